//! The committed SDL (`api/schema.graphql`) is the live schema: any API change shows up in
//! review as a diff of that file. Regenerate with `cargo run -p checkout-crm -- schema > api/schema.graphql`.

#[test]
fn committed_schema_matches_the_live_schema() {
    let path = tests::workspace_root().join("api/schema.graphql");
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    let live = checkout_crm::graphql::sdl();
    assert!(
        committed == live,
        "{} is out of date; run `cargo run -p checkout-crm -- schema > api/schema.graphql`",
        path.display()
    );
}
