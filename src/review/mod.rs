//! The post-incident review.

pub mod layer;
