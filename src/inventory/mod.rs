//! Detection inventories: what the organisation can detect, read from the formats people keep.
