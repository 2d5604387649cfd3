//! Pure OVN/OVS knowledge: parsers, microflows, stage catalogue. No I/O.
