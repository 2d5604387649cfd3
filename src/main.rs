//! Thin: parse, build the context, run, map errors to exit codes.

use std::io::Write;
use std::process::ExitCode;

use kubectl_ko::cli::Command;
use kubectl_ko::cmd::{self, Ctx, Outcome, passthrough};
use kubectl_ko::error::{EXIT_INTERRUPTED, Error, MAX_ECHOED_ARG, clip_long_arguments};
use kubectl_ko::render;

fn main() -> ExitCode {
    let cli = match kubectl_ko::cli::parse_from(std::env::args_os()) {
        Ok(c) => c,
        Err(e) if std::env::args_os().len() <= 1 => {
            // bare `kubectl ko`: help on stdout, exit 0, like the bash script
            let _ = write!(std::io::stdout(), "{}", e.render());
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            // clap: exit 0 for --help/--version, 2 for usage errors.
            print_clap_error(&e);
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    init_tracing(cli.global.verbose);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: could not start the async runtime: {e}");
            return ExitCode::from(6);
        }
    };
    let code = runtime.block_on(async {
        let ctx = Ctx::new(cli.global.clone());
        // perf handles Ctrl-C itself: it must delete the pods it created first.
        if let Command::Perf(a) = &cli.command {
            return finish(&ctx, cmd::perf::run(&ctx, a).await);
        }
        // flows handles Ctrl-C itself: it ends the live view with a summary.
        if let Command::Flows(a) = &cli.command {
            return finish(&ctx, cmd::flows::run(&ctx, a).await);
        }
        // So does bundle: an interrupted NB/SB backup leaves a copy in the pod.
        if let Command::Bundle(a) = &cli.command {
            return finish(&ctx, cmd::bundle::run(&ctx, a).await);
        }
        tokio::select! {
            r = dispatch(&ctx, &cli.command) => finish(&ctx, r),
            _ = tokio::signal::ctrl_c() => {
                // Dropping the command future closes its exec streams, which
                // ends the remote commands.
                eprintln!("interrupted");
                EXIT_INTERRUPTED
            }
        }
    });
    // Background exec tasks may still hold stdin/stdout handles; don't wait for them.
    runtime.shutdown_background();
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

async fn dispatch(ctx: &Ctx, command: &Command) -> Result<Outcome, Error> {
    use passthrough::{DbTool, OvsTool};
    match command {
        Command::Nbctl(a) => passthrough::run_db(ctx, DbTool::Nbctl, &a.args).await,
        Command::Sbctl(a) => passthrough::run_db(ctx, DbTool::Sbctl, &a.args).await,
        Command::Icnbctl(a) => passthrough::run_db(ctx, DbTool::IcNbctl, &a.args).await,
        Command::Icsbctl(a) => passthrough::run_db(ctx, DbTool::IcSbctl, &a.args).await,
        Command::Vsctl(a) => passthrough::run_ovs(ctx, OvsTool::Vsctl, &a.node, &a.args).await,
        Command::Ofctl(a) => passthrough::run_ovs(ctx, OvsTool::Ofctl, &a.node, &a.args).await,
        Command::Dpctl(a) => passthrough::run_ovs(ctx, OvsTool::Dpctl, &a.node, &a.args).await,
        Command::Appctl(a) => passthrough::run_ovs(ctx, OvsTool::Appctl, &a.node, &a.args).await,
        Command::Nb(a) => cmd::db::run(ctx, kubectl_ko::cluster::Db::Nb, &a.action).await,
        Command::Sb(a) => cmd::db::run(ctx, kubectl_ko::cluster::Db::Sb, &a.action).await,
        Command::Tcpdump(a) => cmd::tcpdump::run(ctx, a).await,
        Command::Trace(a) => cmd::trace::run(ctx, a, false).await,
        Command::OvnTrace(a) => cmd::trace::run(ctx, a, true).await,
        Command::Diagnose(a) => cmd::diagnose::run(ctx, a).await,
        Command::EnvCheck(a) => cmd::misc::env_check(ctx, a).await,
        Command::Reload(a) => cmd::misc::reload(ctx, a).await,
        Command::Log(a) => cmd::misc::log(ctx, a).await,
        Command::Bundle(a) => cmd::bundle::run(ctx, a).await,
        Command::Perf(a) => cmd::perf::run(ctx, a).await,
        Command::Flows(a) => cmd::flows::run(ctx, a).await,
        Command::Version => Ok(cmd::misc::version(ctx)),
        Command::Completion(a) => cmd::misc::completion(a),
    }
}

fn finish(ctx: &Ctx, result: Result<Outcome, Error>) -> i32 {
    match result {
        Ok(Outcome::Exit(code)) => code,
        Ok(Outcome::Report {
            result,
            format,
            exit,
        }) => {
            let mut out = std::io::stdout().lock();
            match render::emit(result.as_ref(), format, &ctx.style, &mut out) {
                Ok(()) => exit,
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => exit,
                Err(e) => {
                    let _ = writeln!(std::io::stderr(), "error: could not write the output: {e}");
                    6
                }
            }
        }
        Err(e) => {
            let msg = clip_long_arguments(&e.to_string(), &args());
            let _ = writeln!(std::io::stderr(), "error: {msg}");
            e.exit_code()
        }
    }
}

fn args() -> Vec<String> {
    std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect()
}

/// clap's own message, with a huge argument cut (clap echoes it whole).
fn print_clap_error(e: &clap::Error) {
    let args = args();
    if !e.use_stderr() || args.iter().all(|a| a.len() <= MAX_ECHOED_ARG) {
        let _ = e.print();
        return;
    }
    let msg = clip_long_arguments(&e.render().to_string(), &args);
    let _ = write!(std::io::stderr(), "{msg}");
}

fn init_tracing(verbose: u8) {
    let level = match verbose {
        0 => tracing::Level::WARN,
        1 => tracing::Level::INFO,
        2 => tracing::Level::DEBUG,
        _ => tracing::Level::TRACE,
    };
    use tracing_subscriber::filter::{LevelFilter, Targets};
    use tracing_subscriber::prelude::*;
    // kube-rs logs every failed request at ERROR; our own error message says it
    // better, so its logs show only with -v.
    let kube = if verbose == 0 {
        LevelFilter::OFF
    } else {
        LevelFilter::from_level(level)
    };
    let filter = Targets::new()
        .with_default(level)
        .with_target("kube_client", kube);
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_target(false),
        )
        .with(filter)
        .init();
}
