//! UCI configuration: mwan3's schema, our extensions, and validation that
//! reports every problem at once as `FILE:LINE: section 'NAME' (TYPE):
//! option 'OPT': what is wrong, what was expected`.

pub mod model;
pub use model::*;
