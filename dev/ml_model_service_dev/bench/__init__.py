"""`make bench` (`python3 -m ml_model_service_dev.bench`): the suite's speed figures, each row's measurement in
its own module (`suite`: the order and the tables; `common`: loops and the machine; `stream`: nodes and camera
streams over DDS; `multicam`: several cameras; `peer`: beside Ultralytics' predictor; `runtimes`: every bundled
model on every runtime)."""
