"""Trial attributes written in one transaction: what the driver stores between two trials."""

from __future__ import annotations

import optuna
from sqlalchemy import event

from autostudent import study as studydb


def test_user_attrs_in_one_commit_and_read_back(tmp_path):
    url = f"sqlite:///{tmp_path / 'attrs.db'}"
    study = optuna.create_study(storage=studydb.storage(url), study_name="attrs")
    trial = study.ask()
    engine = study._storage._backend.engine
    commits: list[int] = []
    event.listen(engine, "commit", lambda _conn: commits.append(1))
    attrs = {"curve": [0.5, 0.75], "epochs": 2, "spec": {"kind": "chain"}, "worker": "n:1"}
    studydb.set_user_attrs(trial, attrs)
    assert len(commits) == 1  # Trial.set_user_attr would commit once per key
    assert trial.user_attrs == attrs  # the running trial sees them at once
    studydb.set_user_attrs(trial, {"epochs": 3})  # an existing key is overwritten
    reread = optuna.load_study(study_name="attrs", storage=studydb.storage(url)).trials[0]
    assert reread.user_attrs == {**attrs, "epochs": 3}


def test_user_attrs_on_other_storages():
    study = optuna.create_study()  # in memory
    trial = study.ask()
    studydb.set_user_attrs(trial, {"a": 1, "b": [2]})
    assert study.trials[0].user_attrs == {"a": 1, "b": [2]}
