"""opus_min: a small, standard IVOA UWS 1.1 job controller for VOTable ActivityDescriptions."""

__all__ = ["__version__"]

__version__ = "0.1.0"
