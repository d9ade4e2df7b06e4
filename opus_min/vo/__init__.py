"""VO discovery documents: VOSI capabilities/availability, VOResource records, OAI-PMH. Pure."""
