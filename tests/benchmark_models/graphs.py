"""Tiny hand-built Keras functional models whose valid cuts are known, for the split-analysis tests.

Each builder returns (model, expected blocks as tuples of layer names). Layer names are explicit so the
expectations read as the graph drawn in the docstring. Imported only by TensorFlow-marked tests.
"""

from __future__ import annotations

import keras
from keras import layers

WIDTH = 4


def _input(name: str = "in") -> keras.KerasTensor:
    return keras.Input(shape=(WIDTH,), name=name)


def chain():
    """in -> a -> b -> c: every layer boundary is a cut (the input layer joins the first block)."""
    x = _input()
    y = layers.Dense(WIDTH, name="a")(x)
    y = layers.Dense(WIDTH, name="b")(y)
    y = layers.Dense(WIDTH, name="c")(y)
    return keras.Model(x, y, name="chain"), [("in", "a"), ("b",), ("c",)]


def residual():
    """in -> a -> b -> add(a, b) -> c: no cut between b and add while a's output is still open."""
    x = _input()
    a = layers.Dense(WIDTH, name="a")(x)
    b = layers.Dense(WIDTH, name="b")(a)
    s = layers.Add(name="add")([a, b])
    c = layers.Dense(WIDTH, name="c")(s)
    return keras.Model(x, c, name="residual"), [("in", "a"), ("b", "add"), ("c",)]


def two_branch():
    """in -> a -> {b1 -> b2, c1} -> concat -> d: the two branches form one block."""
    x = _input()
    a = layers.Dense(WIDTH, name="a")(x)
    b = layers.Dense(WIDTH, name="b1")(a)
    b = layers.Dense(WIDTH, name="b2")(b)
    c = layers.Dense(WIDTH, name="c1")(a)
    m = layers.Concatenate(name="concat")([b, c])
    d = layers.Dense(WIDTH, name="d")(m)
    return keras.Model(x, d, name="two_branch"), [("in", "a"), ("b1", "b2", "c1", "concat"), ("d",)]


def nested_branches():
    """in -> a -> {b -> {b1, b2} -> add_inner, c} -> add_outer -> d: the inner fork never opens a cut."""
    x = _input()
    a = layers.Dense(WIDTH, name="a")(x)
    b = layers.Dense(WIDTH, name="b")(a)
    b1 = layers.Dense(WIDTH, name="b1")(b)
    b2 = layers.Dense(WIDTH, name="b2")(b)
    inner = layers.Add(name="add_inner")([b1, b2])
    c = layers.Dense(WIDTH, name="c")(a)
    outer = layers.Add(name="add_outer")([inner, c])
    d = layers.Dense(WIDTH, name="d")(outer)
    return keras.Model(x, d, name="nested"), [
        ("in", "a"), ("b", "b1", "b2", "add_inner", "c", "add_outer"), ("d",)]


def two_inputs_layer():
    """in -> a -> b -> multiply(in, b) -> c: the model input stays open until the two-input layer."""
    x = _input()
    a = layers.Dense(WIDTH, name="a")(x)
    b = layers.Dense(WIDTH, name="b")(a)
    m = layers.Multiply(name="mul")([x, b])
    c = layers.Dense(WIDTH, name="c")(m)
    return keras.Model(x, c, name="two_inputs"), [("in", "a", "b", "mul"), ("c",)]


def shared_layer():
    """in -> a -> s -> b -> s (same layer again) -> c: no cut between s's two calls."""
    x = _input()
    a = layers.Dense(WIDTH, name="a")(x)
    shared = layers.Dense(WIDTH, name="s")
    y = shared(a)
    y = layers.Dense(WIDTH, name="b")(y)
    y = shared(y)
    c = layers.Dense(WIDTH, name="c")(y)
    return keras.Model(x, c, name="shared"), [("in", "a"), ("s", "b"), ("c",)]


ALL = {f.__name__: f for f in (chain, residual, two_branch, nested_branches, two_inputs_layer, shared_layer)}
