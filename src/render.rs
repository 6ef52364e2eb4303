//! Files castoff writes for the user (castoff.toml, later workflows and scaffolds),
//! rendered from templates/ with minijinja. The templates are compiled into the binary,
//! so `castoff init` works from any install.

use minijinja::Environment;
use serde::Serialize;

use crate::error::{Error, Result};

const TEMPLATES: &[(&str, &str)] = &[("castoff.toml", include_str!("../templates/castoff.toml"))];

/// Render the template `name` with `context`.
pub fn render(name: &str, context: impl Serialize) -> Result<String> {
    let mut env = Environment::new();
    env.set_keep_trailing_newline(true);
    for (template, source) in TEMPLATES {
        env.add_template(template, source).map_err(|e| template_error(template, e))?;
    }
    let template = env.get_template(name).map_err(|e| template_error(name, e))?;
    template.render(context).map_err(|e| template_error(name, e))
}

fn template_error(name: &str, error: minijinja::Error) -> Error {
    Error::Internal(format!("rendering template {name}: {error}"))
}

/// A TOML string literal for `value`, quoted and escaped, for use inside templates.
pub fn toml_string(value: &str) -> String {
    toml::Value::String(value.to_string()).to_string()
}
