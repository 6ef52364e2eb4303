//! The command line: clap definitions, turning arguments into library requests, and
//! printing results for humans (stdout for results, stderr for notes and warnings) or,
//! with `--json`, as one JSON object per command on stdout.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};
use serde::Serialize;

use castoff::config::BuilderKind;
use castoff::image::{self, BuildOptions, ImageStatus, LogSink};
use castoff::init::{Ci, Scaffold};
use castoff::manifest::{self, ManifestOptions, Mode, TagStatus};
use castoff::release::render::{OutputStyle, Renderer};
use castoff::{BumpChoice, BumpRequest, Error, InitOptions, Project, Release, ReleaseOptions, StepKind, WriteOptions};

/// Cut multi-arch releases with one command.
#[derive(Debug, Parser)]
#[command(name = "castoff", version, about, propagate_version = true, disable_help_subcommand = true)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Args)]
struct Global {
    /// Run as if castoff was started in DIR.
    #[arg(short = 'C', value_name = "DIR", global = true)]
    directory: Option<PathBuf>,
    /// Use this castoff.toml instead of searching for one; its directory is the project root.
    #[arg(long, value_name = "FILE", global = true)]
    config: Option<PathBuf>,
    /// Print machine-readable JSON on stdout.
    #[arg(long, global = true)]
    json: bool,
    /// Print only results, warnings and errors.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    quiet: bool,
    /// Print more detail (repeat for more).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Write castoff.toml for this directory, create VERSION 0.1.0 if missing, and record
    /// the source baseline.
    ///
    /// With --xtask or --ci, write that scaffold instead (castoff.toml must exist).
    Init {
        /// Overwrite an existing castoff.toml (or scaffold file).
        #[arg(long)]
        force: bool,
        /// Show what would be written; write nothing.
        #[arg(long)]
        dry_run: bool,
        /// Write an xtask crate whose `cargo xtask release` runs castoff's release.
        #[arg(long, conflicts_with = "ci")]
        xtask: bool,
        /// Write a CI workflow: a build job per platform, a manifest merge job, a
        /// publish job.
        #[arg(long, value_enum, value_name = "CI")]
        ci: Option<CiKind>,
    },
    /// Print the current version and nothing else.
    Version,
    /// List the tracked sources added, modified or removed since the baseline.
    Status {
        /// Exit 3 when a bump is due, 0 when none is.
        #[arg(long)]
        check: bool,
    },
    /// Raise the version: major, minor or patch; release (drop the prerelease); or auto
    /// (patch, only when tracked sources changed).
    Bump {
        #[arg(value_parser = clap::builder::PossibleValuesParser::new(BumpRequest::LEVELS))]
        level: String,
        /// Start or advance a prerelease with this label, e.g. rc (1.3.0-rc.1 → 1.3.0-rc.2).
        #[arg(long, value_name = "LABEL")]
        pre: Option<String>,
        /// Show the new version and the changed sources; write nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Build one image per configured platform and push it under its platform tag
    /// ([image] platform_tag), or write it into the OCI layout ([image] output).
    Build {
        /// Build only this platform (repeatable); the default is every configured one.
        #[arg(long = "platform", value_name = "PLATFORM")]
        platforms: Vec<String>,
        /// Build locally only; push nothing.
        #[arg(long)]
        no_push: bool,
        /// Write {platform, digest, reference} as JSON here, for `castoff manifest --from-digests`.
        #[arg(long, value_name = "FILE")]
        digest_file: Option<PathBuf>,
        /// Platforms built at once (default: the number of cores).
        #[arg(long, short = 'j', value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
        jobs: Option<u16>,
        /// buildx only: one multi-platform build instead of one per platform.
        #[arg(long)]
        single_build: bool,
        /// Use this builder instead of [image] builder.
        #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(BuilderKind::NAMES))]
        builder: Option<String>,
        /// Print the commands each build would run; run nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Pack every [[package]] into dist/nuget: a nupkg and its symbols package (snupkg,
    /// or legacy .symbols.nupkg), validated.
    Pack {
        /// Show what would be written; write nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Push the packed packages to every [[feed]] (packing first when they are missing).
    Publish {
        /// Only this feed (repeatable); the default is every configured one.
        #[arg(long = "feed", value_name = "NAME")]
        feeds: Vec<String>,
        /// Show what would be pushed where; push nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Release: bump, build every platform, push the manifests, pack, publish, and
    /// (with [release] git) commit and tag. Continues an unfinished release.
    Release {
        #[command(flatten)]
        steps: StepArgs,
        /// Print the plan with every command and URL; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Platforms built at once (default: the number of cores).
        #[arg(long, short = 'j', value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
        jobs: Option<u16>,
    },
    /// Print the steps `castoff release` would run and what each would do.
    Plan {
        #[command(flatten)]
        steps: StepArgs,
    },
    /// Print a shell completion script: `castoff completions bash > /etc/bash_completion.d/castoff`.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print castoff's man page (roff): `castoff man | man -l -`.
    Man,
    /// Join the per-platform images into a multi-arch index under every release tag
    /// ([image] tags), push it, and verify each tag.
    Manifest {
        /// native: castoff's own registry client; docker-cli: `docker manifest`
        /// create/annotate/push, as the Makefile workflow did.
        #[arg(long, value_enum, default_value_t = ManifestMode::Native)]
        mode: ManifestMode,
        /// Read the sources, print the index and the writes; push nothing.
        #[arg(long)]
        dry_run: bool,
        /// Replace a version tag that already points at a different index.
        #[arg(long)]
        force: bool,
        /// Join the images recorded in DIR/*.json by `castoff build --digest-file`, by
        /// digest, instead of reading the platform tags.
        #[arg(long, value_name = "DIR")]
        from_digests: Option<PathBuf>,
    },
}

/// Which steps a release runs, and how it picks its version.
#[derive(Debug, Args)]
struct StepArgs {
    /// auto: patch when tracked sources changed; major, minor, patch: always; none:
    /// release VERSION as it is.
    #[arg(long, value_name = "LEVEL", default_value = "auto",
          value_parser = clap::builder::PossibleValuesParser::new(BumpChoice::NAMES))]
    bump: String,
    /// Run this step and every one after it.
    #[arg(long, value_name = "STEP", conflicts_with = "only",
          value_parser = clap::builder::PossibleValuesParser::new(StepKind::NAMES))]
    from: Option<String>,
    /// Run only this step.
    #[arg(long, value_name = "STEP", value_parser = clap::builder::PossibleValuesParser::new(StepKind::NAMES))]
    only: Option<String>,
    /// Push the release commit and tag to [release] remote (with [release] git = true).
    #[arg(long)]
    git_push: bool,
}

impl StepArgs {
    fn options(&self, dry_run: bool, jobs: Option<u16>) -> ReleaseOptions {
        let step = |name: &Option<String>| name.as_deref().and_then(|n| n.parse::<StepKind>().ok());
        ReleaseOptions {
            bump: BumpChoice::parse(&self.bump).unwrap_or_default(),
            dry_run,
            from: step(&self.from),
            only: step(&self.only),
            git_push: self.git_push,
            jobs: jobs.map(usize::from),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum CiKind {
    Github,
    Gitlab,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ManifestMode {
    Native,
    DockerCli,
}

/// Where output goes and how much of it.
struct Output {
    json: bool,
    quiet: bool,
    verbose: u8,
}

impl Output {
    fn warn(&self, message: &str) {
        if !self.json || self.verbose > 0 {
            eprintln!("warning: {message}");
        }
    }

    fn note(&self, message: &str) {
        if !self.quiet && !self.json {
            eprintln!("{message}");
        }
    }

    /// Where builders' output goes: each line prefixed with its platform, on stderr, so
    /// parallel builds stay readable and stdout keeps only results. Quiet and JSON runs
    /// show it only with -v.
    fn build_log(&self) -> Option<LogSink> {
        if (self.quiet || self.json) && self.verbose == 0 {
            return None;
        }
        Some(std::sync::Arc::new(|platform: &str, line: &str| {
            let stderr = std::io::stderr();
            let mut err = stderr.lock();
            let _ = writeln!(err, "[{platform}] {line}");
        }))
    }

    fn style(&self) -> OutputStyle {
        OutputStyle { json: self.json, quiet: self.quiet, verbose: self.verbose }
    }

    fn detail(&self, message: &str) {
        if self.verbose > 0 {
            eprintln!("{message}");
        }
    }

    /// Print a command's result: `human` lines on stdout, or `value` as one JSON line.
    fn result(
        &self,
        value: &impl Serialize,
        human: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
    ) -> anyhow::Result<()> {
        let stdout = std::io::stdout();
        let mut out = stdout.lock();
        if self.json {
            serde_json::to_writer(&mut out, value).context("writing JSON to stdout")?;
            writeln!(out).context("writing to stdout")?;
        } else {
            human(&mut out).context("writing to stdout")?;
        }
        out.flush().context("writing to stdout")
    }
}

pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => return argument_error(error),
    };
    let output = Output { json: cli.global.json, quiet: cli.global.quiet, verbose: cli.global.verbose };
    // Builders run in their own process groups (so a failed build can stop all of their
    // helpers), so the terminal's Ctrl-C reaches only castoff: relay it to them, or exit
    // at once when nothing is running.
    let _ = ctrlc::set_handler(|| {
        if !castoff::exec::interrupt() {
            std::process::exit(130);
        }
    });
    match run(cli, &output) {
        Ok(code) => code,
        Err(error) => report_error(&error, &output),
    }
}

/// clap's own messages for help and --version, and bad arguments reported under the
/// same contract as every other error: a hint, exit 2, and a JSON object with --json.
fn argument_error(error: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(error.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
        let _ = error.print();
        return ExitCode::SUCCESS;
    }
    let rendered = error.render().to_string();
    let message = rendered.lines().next().unwrap_or("invalid arguments").trim_start_matches("error: ").to_string();
    let hint = "run `castoff --help`, or `castoff <command> --help`, for the commands and options";
    eprint!("{rendered}");
    eprintln!("  hint: {hint}");
    if std::env::args_os().any(|arg| arg == "--json") {
        let json = serde_json::json!({ "error": { "message": message, "hint": hint, "exit_code": 2 } });
        println!("{json}");
    }
    ExitCode::from(2)
}

fn report_error(error: &anyhow::Error, output: &Output) -> ExitCode {
    let typed = error.downcast_ref::<Error>();
    let code = typed.map(Error::exit_code).unwrap_or(1);
    eprintln!("error: {error}");
    for cause in error.chain().skip(1) {
        eprintln!("  caused by: {cause}");
    }
    let hint = typed.and_then(Error::hint);
    if let Some(hint) = &hint {
        eprintln!("  hint: {}", hint.replace('\n', "\n        "));
    }
    if output.json {
        let json = serde_json::json!({
            "error": {
                "message": error.to_string(),
                "location": typed.and_then(Error::location),
                "hint": hint,
                "exit_code": code,
            }
        });
        println!("{json}");
    }
    ExitCode::from(code)
}

fn run(cli: Cli, output: &Output) -> anyhow::Result<ExitCode> {
    let cwd = std::env::current_dir().context("reading the current directory")?;
    let start = match &cli.global.directory {
        Some(dir) => {
            let dir = cwd.join(dir);
            if !dir.is_dir() {
                return Err(Error::usage(
                    format!("-C {}: no such directory", dir.display()),
                    "pass an existing directory to -C",
                )
                .into());
            }
            dir
        }
        None => cwd,
    };
    let open = || Project::open(&start, cli.global.config.as_deref());

    match cli.command {
        Command::Manifest { mode, dry_run, force, from_digests } => {
            let from_digests = from_digests.map(|dir| start.join(dir));
            run_manifest(&open()?, mode, ManifestOptions { mode: Mode::Native, dry_run, force, from_digests }, output)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Pack { dry_run } => {
            let outcome = castoff::nuget::pack::pack(
                &open()?,
                &castoff::nuget::pack::PackOptions { dry_run, ..Default::default() },
            )?;
            output.result(&outcome, |out| outcome.human().iter().try_for_each(|line| writeln!(out, "{line}")))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Publish { feeds, dry_run } => {
            let options = castoff::nuget::publish::PublishOptions { dry_run, feeds, ..Default::default() };
            let outcome = castoff::nuget::publish::publish(&open()?, &options)?;
            outcome.warnings().iter().for_each(|w| output.warn(w));
            output.result(&outcome, |out| outcome.human().iter().try_for_each(|line| writeln!(out, "{line}")))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Build { platforms, no_push, digest_file, jobs, single_build, builder, dry_run } => {
            let options = BuildOptions {
                platforms,
                no_push,
                digest_file: digest_file.map(|file| start.join(file)),
                jobs: jobs.map(usize::from),
                single_build,
                dry_run,
                builder: builder.as_deref().and_then(BuilderKind::parse),
                log: output.build_log(),
                announce: (!output.quiet && !output.json).then(|| {
                    std::sync::Arc::new(|kind: BuilderKind, reason: &str| {
                        eprintln!("builder: {} ({reason})", kind.name())
                    }) as image::Announce
                }),
            };
            run_build(&open()?, options, output)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Release { steps, dry_run, jobs } => {
            let project = open()?;
            let mut release = Release::plan(&project, steps.options(dry_run, jobs))?;
            release.preflight()?;
            let renderer = Renderer::new(output.style());
            match dry_run {
                true => renderer.plan(release.steps()).context("writing the plan")?,
                false => release.steps().headline().iter().for_each(|line| output.note(line)),
            }
            let outcome = release.execute(&renderer)?;
            renderer.finish(&outcome).context("writing the summary")?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Plan { steps } => {
            let project = open()?;
            let release = Release::plan(&project, steps.options(true, None))?;
            Renderer::new(output.style()).plan(release.steps()).context("writing the plan")?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Completions { shell } => {
            let mut command = Cli::command();
            clap_complete::generate(shell, &mut command, "castoff", &mut std::io::stdout());
            Ok(ExitCode::SUCCESS)
        }
        Command::Man => {
            let mut out = std::io::stdout().lock();
            clap_mangen::Man::new(Cli::command()).render(&mut out).context("writing the man page")?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Init { force, dry_run, xtask, ci } if xtask || ci.is_some() => {
            let what = match ci {
                Some(CiKind::Github) => Scaffold::Ci(Ci::Github),
                Some(CiKind::Gitlab) => Scaffold::Ci(Ci::Gitlab),
                None => Scaffold::Xtask,
            };
            let outcome = castoff::init::scaffold(&open()?, what, InitOptions { force, dry_run })?;
            output.result(&outcome, |out| {
                let verb = if outcome.dry_run { "dry run: would write" } else { "wrote" };
                writeln!(out, "{verb} {}", outcome.written.join(", "))?;
                if !outcome.kept.is_empty() {
                    writeln!(out, "kept {}", outcome.kept.join(", "))?;
                }
                outcome.notes.iter().try_for_each(|note| writeln!(out, "next: {note}"))
            })?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Init { force, dry_run, .. } => {
            let outcome = castoff::init(&start, InitOptions { force, dry_run })?;
            output.result(&outcome, |out| {
                if outcome.dry_run {
                    writeln!(out, "dry run: would write {}", outcome.written.join(", "))?;
                    writeln!(out, "--- castoff.toml ---\n{}", outcome.config)?;
                } else {
                    writeln!(out, "wrote {}", outcome.written.join(", "))?;
                }
                if !outcome.kept.is_empty() {
                    writeln!(out, "kept {} (version {})", outcome.kept.join(", "), outcome.version)?;
                }
                writeln!(out, "tracking: {}", display_list(&outcome.sources))
            })?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Version => {
            let version = open()?.read_version()?.version;
            output.result(&serde_json::json!({ "version": version.to_string() }), |out| writeln!(out, "{version}"))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Status { check } => {
            let status = open()?.status()?;
            status.warnings.iter().for_each(|w| output.warn(w));
            output.detail(&format!(
                "scanned {} tracked file(s): {} hashed, {}",
                status.stats.files,
                status.stats.hashed,
                if status.stats.walked { "directories walked" } else { "no directory changed (stat cache)" }
            ));
            output.result(&status, |out| {
                for (letter, path) in status.changes.listed() {
                    writeln!(out, "{letter} {path}")?;
                }
                Ok(())
            })?;
            let summary = if status.no_sources {
                format!("{}: no sources are tracked, so no bump is ever due", status.version)
            } else if let Some(target) = &status.interrupted_bump {
                format!("{}: a bump to {target} was interrupted; the next `castoff bump` finishes it", status.version)
            } else if status.raised_by_hand {
                format!("{}: VERSION was raised by hand; `castoff bump auto` records the baseline", status.version)
            } else if !status.has_baseline {
                format!(
                    "{}: no source baseline yet ({} tracked files); `castoff bump auto` records it for this version",
                    status.version, status.tracked
                )
            } else if status.bump_due {
                format!("{}: {} tracked source(s) changed; a bump is due", status.version, status.changes.len())
            } else {
                format!("{}: {} tracked source(s), none changed since the baseline", status.version, status.tracked)
            };
            output.note(&summary);
            Ok(if check && status.bump_due { ExitCode::from(3) } else { ExitCode::SUCCESS })
        }
        Command::Bump { level, pre, dry_run } => {
            let request = BumpRequest::parse(&level, pre).map_err(|problem| {
                Error::usage(problem, "use --pre with major, minor or patch, e.g. `castoff bump minor --pre rc`")
            })?;
            let outcome = open()?.bump(&request, WriteOptions { dry_run })?;
            outcome.warnings.iter().for_each(|w| output.warn(w));
            output.result(&outcome, |out| {
                for (letter, path) in outcome.changes.listed() {
                    writeln!(out, "{letter} {path}")?;
                }
                writeln!(out, "{}", outcome.summary())
            })?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn run_build(project: &Project, options: BuildOptions, output: &Output) -> anyhow::Result<()> {
    let outcome = image::run(project, options)?;
    output.result(&outcome, |out| {
        for planned in &outcome.planned {
            writeln!(out, "would run: {planned}")?;
        }
        for image in &outcome.images {
            let status = match image.status {
                ImageStatus::Pushed => "pushed",
                ImageStatus::UpToDate => "up to date",
                ImageStatus::Built => "built",
                ImageStatus::WouldBuild => "would build",
            };
            let digest = image.digest.as_deref().unwrap_or("-");
            writeln!(out, "{status:<11} {:<14} {} {digest}", image.platform, image.reference)?;
        }
        Ok(())
    })
}

fn run_manifest(
    project: &Project,
    mode: ManifestMode,
    options: ManifestOptions,
    output: &Output,
) -> anyhow::Result<()> {
    let mode = match mode {
        ManifestMode::Native => Mode::Native,
        ManifestMode::DockerCli => Mode::DockerCli,
    };
    let outcome = manifest::run(project, ManifestOptions { mode, ..options })?;
    outcome.warnings.iter().for_each(|w| output.warn(w));
    output.result(&outcome, |out| {
        if outcome.dry_run && !outcome.index.is_null() {
            writeln!(out, "{}", serde_json::to_string_pretty(&outcome.index).unwrap_or_default())?;
        }
        writeln!(out, "index {} ({}): {}", outcome.digest, outcome.media_type, outcome.platforms.join(", "))?;
        for tag in &outcome.tags {
            let status = match tag.status {
                TagStatus::Pushed => "pushed",
                TagStatus::Replaced => "replaced",
                TagStatus::UpToDate => "up to date",
                TagStatus::WouldPush => "would push",
                TagStatus::WouldReplace => "would replace",
            };
            writeln!(out, "{status:<13} {}", tag.reference)?;
        }
        for planned in &outcome.planned {
            writeln!(out, "would run: {planned}")?;
        }
        match outcome.dry_run {
            true => writeln!(out, "dry run: nothing pushed ({} requests, all reads)", outcome.requests),
            false => writeln!(out, "verified {} tag(s); {} HTTP requests", outcome.tags.len(), outcome.requests),
        }
    })
}

fn display_list(items: &[String]) -> String {
    if items.is_empty() {
        "nothing yet (edit [version] sources in castoff.toml)".into()
    } else {
        items.join(", ")
    }
}
