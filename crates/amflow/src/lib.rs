//! amflow library
