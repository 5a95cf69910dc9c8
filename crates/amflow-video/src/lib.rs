//! Video data pipeline for amflow (decoding, sampling, transforms, datasets, synthetic data).
