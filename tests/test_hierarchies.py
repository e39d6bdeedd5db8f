"""The shipped hierarchies of the real datasets."""

from __future__ import annotations

import collections

import pytest
import torch

from hmglib import hierarchies
from hmglib.hierarchy import LabelTree


@pytest.mark.parametrize(("name", "sizes"), [
    ("cub200", (13, 37, 200)),
    ("aircraft", (30, 70, 100)),
    ("cars", (9, 196)),
])
def test_level_sizes_and_well_formed(name: str, sizes: tuple[int, ...]) -> None:
    tree = hierarchies.load(name)
    assert tree.level_sizes == sizes
    assert all(n.strip() for n in tree.names)  # every node named
    # every leaf under exactly one root: its path starts at a root and has L nodes
    roots = tree.lift(tree.leaves, 0)
    assert torch.all(tree.level_of[roots] == 0)
    assert torch.equal(tree.ancestor_matrix()[tree.leaves][:, tree.roots].sum(1),
                       torch.ones(len(tree.leaves), dtype=torch.long))
    # every inner node has at least one child
    has_child = torch.zeros(tree.num_nodes, dtype=torch.bool)
    has_child[tree.parent[tree.parent >= 0]] = True
    assert torch.all(has_child[: tree.offset(-1)])
    header = " ".join(hierarchies.describe(name)).lower()
    assert "source" in header and "version" in header


def test_cub_species_in_dataset_id_order() -> None:
    tree = hierarchies.load("cub200")
    leaves = [tree.names[int(n)] for n in tree.leaves]
    assert [int(s.split(".")[0]) for s in leaves] == list(range(1, 201))
    assert leaves[0] == "001.Black_footed_Albatross" and leaves[-1] == "200.Common_Yellowthroat"
    assert tree.path_names(tree.index("001.Black_footed_Albatross")) == [
        "Procellariiformes", "Diomedeidae", "001.Black_footed_Albatross"]
    assert tree.path_names(tree.index("084.Red_legged_Kittiwake")) == [
        "Charadriiformes", "Laridae", "084.Red_legged_Kittiwake"]
    orders = {tree.names[int(n)] for n in tree.roots}
    assert orders == {
        "Anseriformes", "Apodiformes", "Caprimulgiformes", "Charadriiformes", "Coraciiformes",
        "Cuculiformes", "Gaviiformes", "Passeriformes", "Pelecaniformes", "Piciformes",
        "Podicipediformes", "Procellariiformes", "Suliformes"}


def test_aircraft_levels() -> None:
    tree = hierarchies.load("aircraft")
    leaves = [tree.names[int(n)] for n in tree.leaves]
    assert leaves[:3] == ["707-320", "727-200", "737-200"] and leaves[-1] == "Yak-42"
    assert tree.path_names(tree.index("707-320")) == ["Boeing", "Boeing 707", "707-320"]
    # names repeat across levels (family 'Cessna 172' > variant 'Cessna 172')
    fam, var = tree.index("Cessna 172", level="family"), tree.index("Cessna 172", level="variant")
    assert int(tree.parent[var]) == fam


def test_cars_types() -> None:
    tree = hierarchies.load("cars")
    per_type = collections.Counter(tree.names[int(r)] for r in tree.lift(tree.leaves, "type"))
    assert per_type == {"Cab": 18, "Convertible": 26, "Coupe": 34, "Hatchback": 13,
                        "Minivan": 7, "Sedan": 50, "SUV": 35, "Van": 6, "Wagon": 7}
    assert tree.names[int(tree.leaves[0])] == "AM General Hummer SUV 2000"
    assert tree.names[int(tree.leaves[-1])] == "smart fortwo Convertible 2012"


def test_load_returns_independent_trees() -> None:
    a, b = hierarchies.load("cars"), hierarchies.load("cars")
    assert a == b and a is not b
    a.names[0] = "changed"
    assert hierarchies.load("cars").names[0] != "changed"


def test_unknown_hierarchy() -> None:
    with pytest.raises(KeyError, match=r"unknown hierarchy 'imagenet'.*LabelTree.from_csv"):
        hierarchies.load("imagenet")


def test_a_shipped_table_round_trips_through_to_csv(tmp_path) -> None:
    tree = hierarchies.load("aircraft")
    path = tmp_path / "new" / "aircraft.csv"  # the folder is created
    tree.to_csv(path, comment="copy of the shipped table")
    assert LabelTree.from_csv(path) == tree
    assert path.read_text(encoding="utf-8").startswith("# copy of the shipped table\n")
    tree.to_csv(path)  # replaced whole, no temporary file left beside it
    assert [p.name for p in path.parent.iterdir()] == ["aircraft.csv"]
    assert LabelTree.from_csv(path) == tree
