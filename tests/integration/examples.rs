//! Every pipeline under `examples/` checks without errors or warnings.

use pipe_tests::{read_tree, repo_root};
use pipec::fs_loader::FsLoader;

#[test]
fn every_example_checks_clean() {
    let root = repo_root();
    let files = read_tree(&root.join("examples"), &["pipe"]);
    // Files imported by others (under a `blocks/` folder) are checked through their importers.
    let roots: Vec<_> = files.keys().filter(|p| !p.components().any(|c| c.as_os_str() == "blocks")).collect();
    assert!(!roots.is_empty(), "no examples found");
    let loader = FsLoader::new(root.join("examples"));
    let mut problems = Vec::new();
    for p in roots {
        let checked = pipec::check_program(&loader, p).expect("example readable");
        for d in &checked.diagnostics {
            let f = checked.resolved.sources.get(d.primary.span.file);
            problems.push(format!(
                "{}:{}: {} {}",
                f.path.display(),
                f.line_col(d.primary.span.start).0,
                d.code.as_str(),
                d.message
            ));
        }
    }
    assert!(problems.is_empty(), "examples have diagnostics:\n{}", problems.join("\n"));
}
