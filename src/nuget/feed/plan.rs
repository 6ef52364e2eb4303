//! The publish plan: which file goes to which feed by which route, decided from the
//! configuration and the packed files alone (no I/O), then settled once the v3 service
//! indexes say which endpoints exist. Every mismatch is an error here, before anything
//! is pushed.
//!
//! The rules for symbols, per feed (`symbols`, `symbols_feed`):
//! - "none": no symbols; "auto" without a symbols package: nothing to do.
//! - "renamed": only the legacy symbols package, under the nupkg's file name, to this
//!   feed's package endpoint (the nupkg itself is not pushed).
//! - otherwise the symbols go to the symbols feed if one is named, else to this feed:
//!   a folder keeps them beside the package; a v3 feed takes a snupkg at its symbol
//!   endpoint ("auto" skips with a warning when there is none); a legacy package goes
//!   to a package endpoint only on a dedicated symbols feed or with symbols = "legacy"
//!   (it has the nupkg's id and version, so a feed would take it for the package); a
//!   v2 feed takes a snupkg only as a dedicated symbols feed.

use crate::config::{FeedConfig, FeedKind, FeedSymbols};
use crate::error::{Error, Result};
use crate::nuget::feed::{Feed, Route, Upload};
use crate::nuget::{Packed, SymbolsKind};

/// One feed's work: per package, the nupkg and then its symbols.
#[derive(Debug, Clone)]
pub(crate) struct FeedPlan {
    pub feed: usize,
    pub items: Vec<PackagePlan>,
}

#[derive(Debug, Clone)]
pub(crate) struct PackagePlan {
    pub package: usize,
    pub nupkg: Option<Step>,
    pub symbols: Option<SymbolsPlan>,
}

#[derive(Debug, Clone)]
pub(crate) enum SymbolsPlan {
    Push(Step),
    Skip { file: String, reason: String, warn: bool },
}

#[derive(Debug, Clone)]
pub(crate) struct Step {
    pub upload: Upload,
    /// The feed the file goes to (this one, or its symbols feed).
    pub target: usize,
    pub intent: Intent,
}

/// Where on the target a file goes, before the target's service index is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Intent {
    Package,
    /// A snupkg: the v3 symbol endpoint (an error when `required` and absent, else a
    /// skip with a warning), or beside the package in a folder.
    Snupkg {
        required: bool,
    },
    Beside,
    /// Resolved: push by this route.
    Resolved(Route),
}

/// Decide, without any I/O, which file goes where. Mismatches between a feed's
/// `symbols` and what was packed are errors here, before anything is pushed.
pub(crate) fn plan(feeds: &[FeedConfig], selected: &[usize], packages: &[Packed]) -> Result<Vec<FeedPlan>> {
    let mut plans = Vec::new();
    for &index in selected {
        let feed = &feeds[index];
        let mut items = Vec::new();
        for (number, package) in packages.iter().enumerate() {
            let nupkg = feed.packages.then(|| Step {
                upload: Upload {
                    id: package.id.clone(),
                    version: package.version.clone(),
                    path: package.nupkg.clone(),
                    filename: file_name(&package.nupkg),
                    sha512: package.sha512.clone(),
                },
                target: index,
                intent: Intent::Package,
            });
            let symbols = plan_symbols(feeds, index, package)?;
            items.push(PackagePlan { package: number, nupkg, symbols });
        }
        plans.push(FeedPlan { feed: index, items });
    }
    Ok(plans)
}

fn plan_symbols(feeds: &[FeedConfig], index: usize, package: &Packed) -> Result<Option<SymbolsPlan>> {
    let feed = &feeds[index];
    let mode = feed.symbols;
    if mode == FeedSymbols::None {
        return Ok(None);
    }
    let what = format!("{} {}", package.id, package.version);
    let Some(symbols) = &package.symbols else {
        if mode == FeedSymbols::Auto {
            return Ok(None);
        }
        return Err(Error::usage(
            format!("feed `{}` has symbols = \"{}\", but {what} has no symbols package", feed.name, mode.name()),
            "set the [[package]]'s symbols, or the feed's symbols = \"auto\" or \"none\"",
        ));
    };
    let wanted = match mode {
        FeedSymbols::Snupkg => Some(SymbolsKind::Snupkg),
        FeedSymbols::Legacy | FeedSymbols::Renamed => Some(SymbolsKind::Legacy),
        _ => None,
    };
    if let Some(wanted) = wanted.filter(|wanted| *wanted != symbols.kind) {
        let (has, needs) = match wanted {
            SymbolsKind::Snupkg => ("a legacy .symbols.nupkg", "snupkg"),
            SymbolsKind::Legacy => ("a snupkg", "legacy"),
        };
        return Err(Error::usage(
            format!("feed `{}` has symbols = \"{}\", but {what} was packed with {has}", feed.name, mode.name()),
            format!("set the [[package]]'s symbols = \"{needs}\", or change the feed's symbols"),
        ));
    }
    let file = file_name(&symbols.path);
    let mut upload = Upload {
        id: package.id.clone(),
        version: package.version.clone(),
        path: symbols.path.clone(),
        filename: file.clone(),
        sha512: None,
    };
    if mode == FeedSymbols::Renamed {
        // The workaround: the symbols package under the nupkg's name.
        upload.filename = file_name(&package.nupkg);
        return Ok(Some(SymbolsPlan::Push(Step { upload, target: index, intent: Intent::Package })));
    }
    let (target, dedicated) = match &feed.symbols_feed {
        Some(name) => (feeds.iter().position(|f| &f.name == name).unwrap_or(index), true),
        None => (index, false),
    };
    let push = |intent| Ok(Some(SymbolsPlan::Push(Step { upload: upload.clone(), target, intent })));
    let skip = |reason: &str| Ok(Some(SymbolsPlan::Skip { file: file.clone(), reason: reason.into(), warn: true }));
    match (&feeds[target].kind, symbols.kind) {
        (FeedKind::Folder { .. }, _) => push(Intent::Beside),
        (FeedKind::V3 { .. }, SymbolsKind::Snupkg) => push(Intent::Snupkg { required: mode == FeedSymbols::Snupkg }),
        (_, SymbolsKind::Legacy) if dedicated || mode == FeedSymbols::Legacy => push(Intent::Package),
        (_, SymbolsKind::Legacy) => skip(
            "a legacy symbols package has the nupkg's id and version, so this feed would take it for the package; \
             set symbols_feed to a symbol feed, or symbols = \"legacy\" if this feed sorts them itself",
        ),
        (FeedKind::V2 { .. }, SymbolsKind::Snupkg) if dedicated => push(Intent::Package),
        (FeedKind::V2 { .. }, SymbolsKind::Snupkg) => {
            skip("a v2 feed has no symbol endpoint; set symbols_feed to a feed that takes snupkg files")
        }
    }
}

pub(crate) fn file_name(path: &std::path::Path) -> String {
    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

/// Turn every intent into a route now that the service indexes are known. A required
/// snupkg endpoint that is missing is an error; under "auto" the symbols are skipped.
pub(crate) fn resolve_routes(
    feeds: &[FeedConfig],
    mut plans: Vec<FeedPlan>,
    connected: &[Option<Feed>],
    packages: &[Packed],
) -> Result<Vec<FeedPlan>> {
    for plan in &mut plans {
        for item in &mut plan.items {
            if let Some(step) = &mut item.nupkg {
                step.intent = Intent::Resolved(Route::Package);
            }
            let Some(SymbolsPlan::Push(step)) = &mut item.symbols else { continue };
            let target = connected[step.target]
                .as_ref()
                .ok_or_else(|| Error::Internal("a feed in play was not connected".into()))?;
            let route = match step.intent {
                Intent::Package => Route::Package,
                Intent::Beside => Route::Beside,
                Intent::Snupkg { .. } if target.is_folder() => Route::Beside,
                Intent::Snupkg { .. } if target.takes_snupkg() => Route::SymbolEndpoint,
                Intent::Snupkg { required: true } => {
                    let package = &packages[item.package];
                    return Err(Error::Failed {
                        problem: format!(
                            "feed `{}` has symbols = \"snupkg\", but feed `{}` advertises no SymbolPackagePublish/4.9.0 \
                             endpoint for {} {}; nothing was pushed",
                            feeds[plan.feed].name, target.name, package.id, package.version
                        ),
                        hint: "push the symbols elsewhere with symbols_feed, or use symbols = \"auto\" to skip them"
                            .into(),
                    });
                }
                Intent::Snupkg { required: false } => {
                    let reason = format!(
                        "feed `{}` advertises no SymbolPackagePublish/4.9.0 endpoint for snupkg files",
                        target.name
                    );
                    item.symbols = Some(SymbolsPlan::Skip { file: step.upload.filename.clone(), reason, warn: true });
                    continue;
                }
                Intent::Resolved(route) => route,
            };
            step.intent = Intent::Resolved(route);
        }
    }
    Ok(plans)
}

/// One warning per feed and reason for symbols that cannot go anywhere (not one per
/// package).
pub(crate) fn skip_warnings(plans: &[FeedPlan], feeds: &[FeedConfig], warnings: &mut Vec<String>) {
    for plan in plans {
        for item in &plan.items {
            if let Some(SymbolsPlan::Skip { reason, warn: true, .. }) = &item.symbols {
                let message = format!("feed `{}`: symbols not pushed: {reason}", feeds[plan.feed].name);
                if !warnings.contains(&message) {
                    warnings.push(message);
                }
            }
        }
    }
}
