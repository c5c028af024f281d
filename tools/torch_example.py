"""The PyTorch example of the README's "Checking your own kernels", and a negative control.

    python3 tools/check_impl.py --module tools/torch_example.py --map prune24=my_prune --torch
    python3 tools/check_impl.py --module tools/torch_example.py \
        --map prune24=prune24_argsort_descending --torch        # must fail the tie cases
"""

import torch


def my_prune(w):
    """Hard 2:4 along rows: the two largest |w| of every 4; ties: the higher index wins."""
    groups = w.reshape(-1, 4)
    keep = torch.sort(groups.abs(), dim=1, stable=True).indices[:, 2:]
    mask = torch.zeros_like(groups, dtype=torch.uint8).scatter_(1, keep, 1)
    pruned = torch.where(mask.bool(), groups, torch.zeros_like(groups))
    return pruned.reshape(w.shape), mask.reshape(w.shape)


def prune24_argsort_descending(w):
    """The common `argsort(-|w|)[:, :2]` form: ties go wherever the sort puts them."""
    groups = w.reshape(-1, 4)
    keep = torch.argsort(groups.abs(), dim=1, descending=True)[:, :2]
    mask = torch.zeros_like(groups, dtype=torch.uint8).scatter_(1, keep, 1)
    pruned = torch.where(mask.bool(), groups, torch.zeros_like(groups))
    return pruned.reshape(w.shape), mask.reshape(w.shape)
