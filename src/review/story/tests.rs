//! Tests of the story's rules.
