"""Sample-quality metrics: the FID Inception port, FID / KID / IS / precision-recall, offline
proxy metrics for the embedded datasets, and `evaluator.create_evaluator`, their single entry point."""
