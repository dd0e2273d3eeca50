"""Robustness figures for the trust boundary and faults, from real nodes over real DDS.

Each phase is bounded in time; the whole run takes a few minutes. Phases (all by default):

  infer     fuzz the model service's ~/infer (>= 10,000 requests: random names, data types, shapes with
            zero/huge/overflowing dimensions, byte lengths), then check it still answers correctly
  topics    fuzz a vision node's image, image/compressed, depth and camera_info topics (>= 3,000 messages)
            with valid frames mixed in, and count the 2D outputs that still came out
  restart   kill -9 the model service under a 30 Hz stream to a vision node using it, restart it, and
            measure how long after it serves again the vision node's detections resume
  swap      hot-swap the model service's model under a 30 Hz stream; count garbled and missing frames
  flood     1080p frames at 100 Hz to a vision node; RSS before/after, output rate, latency
  leak      try label_path/model_path tricks (absolute, '..', symlinks) on both nodes with a secret file
            outside the allowed folders, and look for its token in every topic, service answer and
            parameter reply
  bitflip   40 bit-flipped copies of the bundled models in a checksummed repository: how many load
  malformed serialised colour messages that do not deserialise (a data length past the end, a string length
            of 2^31, cut to a third, random garbage) between good frames at 10 Hz, raw and compressed: good
            frames answered, malformed messages counted by the node, status level
  burst     20, 40 and 80 simultaneous Infer calls (then 80 again through clients with rclpy's default service
            QoS, keep-last 10): answered (ok or busy), lost, served by the node's own count, slowest answer
  waiting   a GetDetections waiting 25 s for a camera frame: parameter-read latency and ~/status rate meanwhile
  startup   a model service whose start-up model has unreadable metadata: alive, status, GetMetadata, LoadModel
  hostile_models  a TFLite model declaring a huge input, ONNX graphs expanding to a 1 GiB output (declared,
            and only known from the input's value), a 640-byte JPEG declaring 7000x7000 at 30 Hz beside good
            frames: refused or not, the message, peak RSS growth, good frames answered

Printed: crashes, clean refusals, RSS before/after, recovery times, failed and garbled frames, leaked
bytes. Nodes run in their own processes (harness.processes.spawn_node) in a private DDS
domain (--domain, default random 150-230), their logs under --out.

    python3 -m ml_model_service_dev.robustness                 # everything
    python3 -m ml_model_service_dev.robustness --phases infer,leak --json out/robustness.json

Modules: `common` (the harness of nodes, clients and figures every phase uses), `phases` (the model service,
topics, restarts, swaps, floods, leaks, bit flips), `graph` (malformed bytes, bursts, waiting calls, start-up
and hostile models), `__main__` (the command line).
"""
