"""Camera frames through the pipeline: images decoded within bounds (`imaging`), colour paired with depth
(`pairing`), the vision model's results per frame (`pipeline`), 3D objects from depth (`pointcloud`), tracking
ids (`tracking`), drawings (`visualize`) and the stream's health (`health`). Above `core.reading`, whose
detections it takes."""
