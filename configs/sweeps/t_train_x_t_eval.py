"""The paper's T_train × T_eval sweep on Qwen3-30B-A3B-Instruct-2507: SSD data sampled at five
training temperatures with no training truncation (no top-k, no top-p), each SSD model evaluated
over the grid 0.6–1.5 with the model's own evaluation truncation. The report prints
T_eff = T_train · T_eval beside each pass@1 (the paper's sweeps peak near T_eff ≈ 1.2).

    python launch/sweep.py --sweep=configs/sweeps/t_train_x_t_eval.py            # run here, in turn
    python launch/sweep.py --sweep=configs/sweeps/t_train_x_t_eval.py --print    # one command each
    python launch/sweep.py --sweep=configs/sweeps/t_train_x_t_eval.py --report   # the T_eff table

The same sweep on another model: `--base_config=configs/paper/qwen3_4b_instruct.py`. The base model's own grid
is the decode-only baseline (configs/sweeps/decode_only.py), so the variants evaluate only their
SSD model.
"""

BASE_CONFIG = "configs/paper/qwen3_30b_a3b_instruct.py"
T_TRAIN = (0.5, 0.7, 1.0, 1.5, 2.0)
T_EVAL = (0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2, 1.3, 1.4, 1.5)


def get_sweep():
    return [
        {
            "workdir": f"runs/sweep_t_train/{t_train:g}",
            "sampling.temperature": t_train,
            "sampling.top_k": 0,  # no training truncation
            "sampling.top_p": 1.0,
            "eval.temperatures": T_EVAL,
            "eval.include_base": False,
        }
        for t_train in T_TRAIN
    ]
