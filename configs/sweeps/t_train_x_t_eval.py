"""The paper's T_train × T_eval sweep: SSD data sampled at five training temperatures, each SSD
model evaluated over the grid 0.6–1.5 (the paper's sweeps peak near T_train·T_eval ≈ 1.2).

    python launch/sweep.py --sweep=configs/sweeps/t_train_x_t_eval.py            # run here, in turn
    python launch/sweep.py --sweep=configs/sweeps/t_train_x_t_eval.py --print    # one command each

The base model's own grid is the decode-only baseline (configs/sweeps/decode_only.py), so the
variants evaluate only their SSD model.
"""

BASE_CONFIG = "configs/paper/qwen3_4b_instruct.py"
T_TRAIN = (0.5, 0.7, 1.0, 1.5, 2.0)
T_EVAL = (0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2, 1.3, 1.4, 1.5)


def get_sweep():
    return [
        {
            "workdir": f"runs/sweep_t_train/{t_train:g}",
            "sampling.temperature": t_train,
            "eval.temperatures": T_EVAL,
            "eval.include_base": False,
        }
        for t_train in T_TRAIN
    ]
