//! Fakes of remote services the tests cannot reach, each kept to the documented contract in
//! shared/specs, failures included.
#![allow(dead_code)]

pub mod graph;
pub mod receiver;
pub mod smtp;
