"""The vision node's parts: one camera's pipeline from subscription to publication (`camera.py`), the thread that
drives every camera (`driver.py`), and what they use: subscriptions, frames, publishers, services, the model."""
