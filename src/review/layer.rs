//! ATT&CK Navigator layers (format 4.5) written by reviews and digests.
