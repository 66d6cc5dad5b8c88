//! Campaign governance, the pure part (issue 20, items 2 and 3): taxonomy
//! templates, validation of tracking values against them, and the tracking
//! URL built from a destination and validated values. No I/O: the registry's
//! storage, the HTTP endpoints and the compliance counting call into this.
//!
//! - `taxonomy`: the template (`PUT .../registry/taxonomy` body), its checks
//!   and compiled form, and the registry lookup the caller supplies.
//! - `validate`: auto-transforms (warnings) and per-field errors.
//! - `url_builder`: the final URL, its composite key and dimensions.
//! - `compliance`: the verdict on live traffic's tracking values (item 5).
//! - `registry`: id patterns, statuses, attributes and the `registry_command`
//!   event body (item 1).

pub mod compliance;
pub mod registry;
pub mod taxonomy;
pub mod url_builder;
pub mod validate;

pub use taxonomy::{
    check_version, is_field_name, CaseRule, CompiledTaxonomy, Concat, DependentList, FieldRule, IdLookup, IdType, SpaceRule,
    Taxonomy, TemplateError, UTM_FIELDS,
};
pub use url_builder::{build, build_url, check_destination, BuiltUrl, DESTINATION};
pub use validate::{validate, ErrorCode, FieldError, Transform, ValidFields, Validation, Warning};

#[cfg(test)]
mod roundtrip_tests;
#[cfg(test)]
mod validate_tests;
