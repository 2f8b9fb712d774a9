"""Static INT8 from calibration: the configs, the builder that caches exports and calibrations, the accuracy-aware search."""
