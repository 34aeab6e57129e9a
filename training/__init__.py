"""All torch code: dynamic-width layers, complexity model, data pipeline, training loop,
consolidation and ONNX export. Install with the ``train`` extra."""
