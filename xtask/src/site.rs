//! `cargo xtask site --out DIR`: the page as a self-contained static site, to host anywhere.
//!
//! The site is the built page (`dist/`: index.html, the service worker, `web/`, `pkg/`) with
//! the bundled organisms, and optionally the real models, under `models/`. Every URL the page
//! and its worker use is relative, so the directory works at a host's root or under a subpath
//! (GitHub Pages' `https://USER.github.io/REPO/`) on any static file server. Such a server
//! usually cannot send the COOP and COEP headers that threads need; the service worker adds
//! them from the second load (see `web/sw.js` and `web/boot.js`).

use std::path::{Component, Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::setup;

/// Written into every site, so that a later run knows the directory is its own to replace.
pub const MARKER: &str = ".hawthorne-site";

/// The organisms the page loads without asking (its default model and the control).
pub const ORGANISMS: [&str; 2] = ["organism-deceptive.gguf", "organism-control.gguf"];

/// What a run was asked for.
#[derive(Debug)]
struct Options {
    out: PathBuf,
    smollm2: bool,
    gemma: bool,
}

fn parse(args: &[String], cwd: &Path) -> Result<Options> {
    let usage = "usage: cargo xtask site --out DIR [--with-smollm2] [--with-gemma]";
    let (mut out, mut smollm2, mut gemma) = (None, false, false);
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--out" => out = Some(args.next().with_context(|| format!("--out needs a directory\n{usage}"))?.clone()),
            "--with-smollm2" => smollm2 = true,
            "--with-gemma" => gemma = true,
            other => match other.strip_prefix("--out=") {
                Some(dir) => out = Some(dir.to_string()),
                None => bail!("unknown argument `{other}`\n{usage}"),
            },
        }
    }
    let out = out.with_context(|| format!("say where to write the site with --out DIR\n{usage}"))?;
    Ok(Options { out: normalise(&cwd.join(out)), smollm2, gemma })
}

/// `a/./b/../c` → `a/c`, without touching the file system (the directory may not exist yet).
fn normalise(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    out
}

/// `cargo xtask site`: builds the page, then writes the site. `cwd` is where the command was
/// run from (a relative `--out` is relative to it, not to the workspace).
pub fn site(root: &Path, args: &[String], cwd: &Path) -> Result<()> {
    let opts = parse(args, cwd)?;
    // Refuse a bad directory before spending minutes on a build.
    check_out(root, &opts.out)?;
    setup::web_tools()?;
    if opts.smollm2 {
        setup::fetch_smollm2(root)?;
    }
    if opts.gemma {
        setup::fetch_gemma3(root)?;
    }
    crate::build_web(root)?;
    let mut models: Vec<&str> = ORGANISMS.to_vec();
    if opts.smollm2 {
        models.push(setup::SMOLLM2_FILE);
    }
    if opts.gemma {
        models.push(setup::GEMMA3_FILE);
    }
    write(root, &opts.out, &models)?;
    print_summary(&opts.out)
}

/// Whether `out` may receive a site: new, empty, or written by an earlier run (it has the
/// marker). Anything else is refused, because the site replaces everything in its directory.
fn check_out(root: &Path, out: &Path) -> Result<()> {
    if root.join("dist").starts_with(out) || out.starts_with(root.join("dist")) {
        bail!(
            "{} would hold or sit inside dist/, which every build clears; choose a directory outside dist/ (e.g. `--out site/`)",
            out.display()
        );
    }
    if !out.exists() {
        return Ok(());
    }
    if !out.is_dir() {
        bail!("{} exists and is not a directory; choose a new or empty directory for the site", out.display());
    }
    let empty = std::fs::read_dir(out).with_context(|| format!("reading {}", out.display()))?.next().is_none();
    if !empty && !out.join(MARKER).is_file() {
        bail!(
            "{} is not empty and was not written by `cargo xtask site` (it has no {MARKER} file).\n\
             The site replaces everything in its directory, so choose a new or empty one (e.g. `--out site/`).",
            out.display()
        );
    }
    Ok(())
}

/// Writes the site from the built page in `dist/` and `models/{name}` for each of `models`
/// into `out`, replacing an earlier site there. Builds nothing: `build_web` has run.
pub fn write(root: &Path, out: &Path, models: &[&str]) -> Result<()> {
    check_out(root, out)?;
    let dist = root.join("dist");
    anyhow::ensure!(dist.join("index.html").is_file(), "dist/ holds no built page; run `cargo xtask build-web` first");
    for name in models {
        let model = root.join("models").join(name);
        anyhow::ensure!(model.is_file(), "{} is missing, so the site cannot include it", model.display());
    }
    // An earlier site's files go, so that a model left out this time is not left behind.
    if out.exists() {
        for entry in std::fs::read_dir(out)? {
            let path = entry?.path();
            if path.is_dir() {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            }
            .with_context(|| format!("removing the earlier site's {}", path.display()))?;
        }
    }
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    std::fs::write(
        out.join(MARKER),
        "Written by `cargo xtask site` (Hawthorne). The next run replaces everything in this directory.\n",
    )?;
    crate::copy_dir(&dist, out)?;
    // GitHub Pages runs Jekyll on a branch's files unless told not to; the page needs none of it.
    std::fs::write(out.join(".nojekyll"), "")?;
    std::fs::create_dir_all(out.join("models"))?;
    for name in models {
        std::fs::copy(root.join("models").join(name), out.join("models").join(name))
            .with_context(|| format!("copying models/{name}"))?;
    }
    Ok(())
}

/// Every file under `dir`, with its size, relative to `dir`.
fn files(dir: &Path) -> Result<Vec<(PathBuf, u64)>> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).with_context(|| format!("reading {}", d.display()))? {
            let entry = entry?;
            if entry.file_type()?.is_dir() {
                stack.push(entry.path());
            } else {
                let rel = entry.path().strip_prefix(dir)?.to_path_buf();
                found.push((rel, entry.metadata()?.len()));
            }
        }
    }
    found.sort();
    Ok(found)
}

fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

fn print_summary(out: &Path) -> Result<()> {
    let all = files(out)?;
    let total: u64 = all.iter().map(|(_, n)| n).sum();
    let (models, page): (Vec<_>, Vec<_>) = all.iter().partition(|(p, _)| p.starts_with("models"));
    println!("\nThe site is in {}: {} files, {}.", out.display(), all.len(), mb(total));
    println!("  the page (index.html, sw.js, web/, pkg/): {} files, {}", page.len(), mb(page.iter().map(|(_, n)| n).sum()));
    for (path, size) in &models {
        println!("  {:<48} {}", path.display(), mb(*size));
    }
    if !out.join("pkg/mt/worker.js").is_file() {
        println!("  (no multi-threaded worker: it needs the nightly toolchain; the page runs one thread)");
    }
    let parent = out.parent().unwrap_or(out);
    let name = out.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    println!(
        "\nServe the directory with any static file server, for example\n\
         \x20 python3 -m http.server 8000 --bind 127.0.0.1 --directory {dir}\n\
         and open http://127.0.0.1:8000/. It works under a subpath too: serving {parent}\n\
         the same way, the page is at http://127.0.0.1:8000/{name}/. The host need not send any\n\
         headers; for `?threads=N` the service worker makes the page cross-origin isolated from its\n\
         second load (it reloads itself once to get there).",
        dir = out.display(),
        parent = parent.display(),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("hawthorne-site-test-{}-{name}", std::process::id()));
        std::fs::remove_dir_all(&dir).ok();
        dir
    }

    #[test]
    fn out_is_relative_to_where_the_command_ran() {
        let args: Vec<String> = ["--with-gemma", "--out", "site/../www/"].iter().map(|s| s.to_string()).collect();
        let opts = parse(&args, Path::new("/home/me/work")).expect("valid arguments");
        assert_eq!(opts.out, PathBuf::from("/home/me/work/www"));
        assert!(opts.gemma && !opts.smollm2);
        assert!(parse(&["--with-smollm2".to_string()], Path::new("/")).is_err(), "--out is required");
        assert!(parse(&["--out=x".to_string(), "--fast".to_string()], Path::new("/")).is_err());
    }

    #[test]
    fn refuses_a_directory_it_did_not_write() {
        let root = crate::repo_root();
        let dir = temp("refuse");
        check_out(&root, &dir).expect("a new directory is fine");
        std::fs::create_dir_all(&dir).expect("temp dir");
        check_out(&root, &dir).expect("an empty directory is fine");
        std::fs::write(dir.join("notes.txt"), "mine").expect("write");
        let err = check_out(&root, &dir).expect_err("someone else's files");
        assert!(err.to_string().contains("was not written by `cargo xtask site`"), "{err}");
        std::fs::write(dir.join(MARKER), "").expect("write");
        check_out(&root, &dir).expect("an earlier site is replaced");
        assert!(check_out(&root, &root).is_err(), "the workspace holds dist/");
        assert!(check_out(&root, &root.join("dist/site")).is_err());
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn writes_the_page_and_the_models_and_replaces_an_earlier_site() {
        // A fake workspace: a built page and two models.
        let root = temp("root");
        std::fs::create_dir_all(root.join("dist/pkg/mt")).expect("temp dir");
        std::fs::create_dir_all(root.join("models")).expect("temp dir");
        std::fs::write(root.join("dist/index.html"), "<!doctype html>").expect("write");
        std::fs::write(root.join("dist/pkg/mt/worker.js"), "x").expect("write");
        std::fs::write(root.join("models/a.gguf"), "aa").expect("write");
        std::fs::write(root.join("models/b.gguf"), "bbb").expect("write");
        let out = root.join("out/hawthorne");
        write(&root, &out, &["a.gguf", "b.gguf"]).expect("first site");
        write(&root, &out, &["a.gguf"]).expect("the marker lets it replace its own site");
        let got: Vec<_> = files(&out).expect("listing").into_iter().map(|(p, _)| p.to_string_lossy().into_owned()).collect();
        assert_eq!(got, [MARKER, ".nojekyll", "index.html", "models/a.gguf", "pkg/mt/worker.js"]);
        assert!(write(&root, &out, &["missing.gguf"]).is_err());
        std::fs::remove_dir_all(&root).ok();
    }
}
