//! Microsoft 365 security capabilities mapped to ATT&CK (CTID Mappings Explorer).
