"""The paper's mixture-of-experts rows, kept as recipes until ssd-jax supports MoE."""

from ml_collections import ConfigDict


def not_supported_yet(name: str, recipe: ConfigDict) -> ConfigDict:
    raise NotImplementedError(
        f"{name} is a mixture-of-experts model, which ssd-jax does not support yet (see the README, "
        f"'Not supported yet'). Its paper recipe is kept in this config file's recipe() for when it does: "
        f"sampling T/k/p {recipe.sampling.temperature}/{recipe.sampling.top_k}/{recipe.sampling.top_p}, "
        f"SSD evaluation {recipe.eval.temperatures} with k/p {recipe.eval.top_k}/{recipe.eval.top_p}."
    )
