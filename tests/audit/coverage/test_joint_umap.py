"""The joint UMAP map of several datasets (the report's comparison scatter)."""
def test_joint_umap_of_two_datasets(shared_samples):
    from monoculture.audit.run import AuditOptions, run_audit

    doc = run_audit([str(shared_samples / "mptrj_sample.json"), str(shared_samples / "omat24_sample")],
                    AuditOptions(quiet=True, quests_crosscheck=False))
    umap = doc["chemical_space"]["umap"]
    assert len(umap["x"]) == len(umap["y"]) == 83 + 30
    assert set(umap["datasets"]) == {"mptrj", "omat24"}
