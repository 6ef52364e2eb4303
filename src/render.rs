//! Files castoff writes for the user (castoff.toml, CI workflows, the xtask scaffold),
//! rendered from templates/ with minijinja. The templates are compiled into the binary,
//! so `castoff init` works from any install.

use minijinja::{AutoEscape, Environment};
use serde::Serialize;

use crate::error::{Error, Result};

const TEMPLATES: &[(&str, &str)] = &[
    ("castoff.toml", include_str!("../templates/castoff.toml")),
    ("xtask/Cargo.toml", include_str!("../templates/xtask/Cargo.toml.j2")),
    ("xtask/main.rs", include_str!("../templates/xtask/main.rs.j2")),
    ("ci/github.yml", include_str!("../templates/ci/github.yml.j2")),
    ("ci/gitlab.yml", include_str!("../templates/ci/gitlab.yml.j2")),
];

/// Render the template `name` with `context`.
pub fn render(name: &str, context: impl Serialize) -> Result<String> {
    let mut env = Environment::new();
    env.set_keep_trailing_newline(true);
    // Nothing castoff writes is HTML; values are quoted for their format by filters.
    env.set_auto_escape_callback(|_| AutoEscape::None);
    env.add_filter("quote", yaml_string);
    for (template, source) in TEMPLATES {
        env.add_template(template, source).map_err(|e| template_error(template, e))?;
    }
    let template = env.get_template(name).map_err(|e| template_error(name, e))?;
    template.render(context).map_err(|e| template_error(name, e))
}

fn template_error(name: &str, error: minijinja::Error) -> Error {
    Error::Internal(format!("rendering template {name}: {error}"))
}

/// A YAML double-quoted scalar for `value` (a JSON string literal is one), for the CI
/// workflows: `{{ value | quote }}`.
fn yaml_string(value: String) -> String {
    serde_json::Value::String(value).to_string()
}

/// A TOML string literal for `value`, quoted and escaped, for use inside templates.
pub fn toml_string(value: &str) -> String {
    toml::Value::String(value.to_string()).to_string()
}
