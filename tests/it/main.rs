//! The one integration-test binary; each module below is one area of behaviour.
