"""Custom Keras layers for the ``--custom-objects`` tests: one registered by decorator, one only listed in
``custom_objects``, so both ways the flag finds classes are exercised."""

from __future__ import annotations

import keras


@keras.saving.register_keras_serializable(package="scission_tests")
class Scale(keras.layers.Layer):
    """Multiplies by a constant: found through Keras' registry once this module is imported."""

    def __init__(self, factor: float = 2.0, **kwargs):
        super().__init__(**kwargs)
        self.factor = factor

    def call(self, x):
        return x * self.factor

    def get_config(self):
        return {**super().get_config(), "factor": self.factor}


class Shift(keras.layers.Layer):
    """Adds a constant: not registered, so only the ``custom_objects`` dict below lets Keras find it."""

    def __init__(self, offset: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        self.offset = offset

    def call(self, x):
        return x + self.offset

    def get_config(self):
        return {**super().get_config(), "offset": self.offset}


custom_objects = {"Shift": Shift}


def custom_model() -> keras.Model:
    x = keras.Input((6,), name="in")
    y = keras.layers.Dense(4, name="a")(x)
    y = Scale(3.0, name="scale")(y)
    y = Shift(0.5, name="shift")(y)
    y = keras.layers.Dense(2, name="head")(y)
    return keras.Model(x, y, name="custom")


def lambda_model() -> keras.Model:
    x = keras.Input((6,), name="in")
    y = keras.layers.Dense(4, name="a")(x)
    y = keras.layers.Lambda(lambda t: t * 2.0, name="double")(y)
    y = keras.layers.Dense(2, name="head")(y)
    return keras.Model(x, y, name="lambda")
