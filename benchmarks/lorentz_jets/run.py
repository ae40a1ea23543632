"""Toy top tagging: LorentzMACE against DeepSets and an MLP of about the same size.

    OMP_NUM_THREADS=1 python benchmarks/lorentz_jets/run.py --output benchmarks/lorentz_jets/results.json

The baselines come with two kinds of inputs (baselines.py). All models train on the same jets (mlpot.groups.jets.make_jets, seed 0), pick their best epoch on
the same validation jets, and are scored on held-out test jets (seed 1) and on those test jets
seen from other frames: each jet given its own random rotation and a boost of rapidity
``--test-rapidity`` along a random direction. Prints a markdown table and writes the numbers.
"""

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Dict, Iterator, Tuple

import numpy as np
import torch
from scipy.stats import rankdata

from mlpot.files import atomic_output, check_output_file
from mlpot.groups import Lorentz
from mlpot.groups.jets import TOP_MASS, JetSample, jet_mass, make_jets
from mlpot.groups.lorentz_net import LorentzMACE

sys.path.insert(0, str(Path(__file__).resolve().parent))
from baselines import FEATURES, DeepSets, FlatMLP, jet_frame  # noqa: E402


def roc_metrics(scores: np.ndarray, labels: np.ndarray) -> Dict[str, float]:
    """Accuracy at logit 0, AUC, and background rejection 1/eps_B at 30 % signal efficiency."""
    signal, background = scores[labels == 1], scores[labels == 0]
    ranks = rankdata(scores)
    auc = (ranks[labels == 1].sum() - len(signal) * (len(signal) + 1) / 2) / (len(signal) * len(background))
    threshold = np.quantile(signal, 0.7)  # 30 % of the signal scores above
    passed = int((background > threshold).sum())
    return {
        "accuracy": float(((scores > 0) == (labels == 1)).mean()),
        "auc": float(auc),
        "rejection_30": float(len(background) / passed) if passed else float("inf"),
        "background_passing_30": passed,
    }


def batches(sample: JetSample, batch_size: int, rng: np.random.Generator, trim: bool) -> Iterator[np.ndarray]:
    """Index batches of jets with similar numbers of constituents (shuffled within and across
    buckets), so that set models can drop the common padding (``trim``)."""
    counts = sample.mask.sum(axis=1) + (rng.uniform(size=len(sample)) if trim else 0.0)
    order = np.argsort(counts) if trim else rng.permutation(len(sample))
    chunks = [order[start : start + batch_size] for start in range(0, len(order), batch_size)]
    for k in rng.permutation(len(chunks)):
        yield chunks[k]


def tensors(sample: JetSample, index: np.ndarray, trim: bool) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    mask = sample.mask[index]
    width = int(mask.sum(axis=1).max()) if trim else mask.shape[1]  # constituents come hardest first
    momenta = torch.tensor(sample.momenta[index, :width], dtype=torch.float32)
    return momenta, torch.tensor(mask[:, :width]), torch.tensor(sample.label[index], dtype=torch.float32)


@torch.no_grad()
def predict(model: torch.nn.Module, sample: JetSample, trim: bool, batch_size: int = 512) -> np.ndarray:
    model.eval()
    scores = np.empty(len(sample))
    order = np.argsort(sample.mask.sum(axis=1))
    for start in range(0, len(order), batch_size):
        index = order[start : start + batch_size]
        momenta, mask, _ = tensors(sample, index, trim)
        scores[index] = model(momenta, mask).numpy()
    return scores


def train(
    model: torch.nn.Module, train_set: JetSample, valid_set: JetSample, epochs: int, lr: float, batch_size: int, trim: bool, seed: int
) -> Dict[str, object]:
    """Adam with a cosine schedule; the weights of the epoch with the best validation AUC are kept."""
    rng = np.random.default_rng(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    steps = epochs * int(np.ceil(len(train_set) / batch_size))
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
    best, history, start = (-1.0, None, 0), [], time.time()
    for epoch in range(epochs):
        model.train()
        losses = []
        for index in batches(train_set, batch_size, rng, trim):
            momenta, mask, labels = tensors(train_set, index, trim)
            loss = torch.nn.functional.binary_cross_entropy_with_logits(model(momenta, mask), labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            losses.append(loss.item())
        valid_auc = roc_metrics(predict(model, valid_set, trim), valid_set.label)["auc"]
        history.append({"epoch": epoch + 1, "train_loss": float(np.mean(losses)), "valid_auc": valid_auc, "seconds": time.time() - start})
        print(f"  epoch {epoch + 1}: loss {np.mean(losses):.4f}, valid AUC {valid_auc:.4f}, {time.time() - start:.0f} s", flush=True)
        if valid_auc > best[0]:
            best = (valid_auc, {k: v.clone() for k, v in model.state_dict().items()}, epoch + 1)
    model.load_state_dict(best[1])
    return {"best_epoch": best[2], "train_seconds": time.time() - start, "history": history}


def random_frames(n: int, rapidity: float, seed: int) -> np.ndarray:
    """Per jet a Lorentz matrix [n, 4, 4]: a uniform random rotation, then a boost of the given
    rapidity along a uniform random direction (the group layer's exponential map)."""
    rng = np.random.default_rng(seed)
    group = Lorentz()
    matrices = np.empty((n, 4, 4))
    for k in range(n):
        axis = rng.normal(size=3)
        rotation = axis / np.linalg.norm(axis) * rng.uniform(0, np.pi)
        direction = rng.normal(size=3)
        matrices[k] = group.element(rotation, direction / np.linalg.norm(direction) * rapidity)
    return matrices


def parameter_count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--train-jets", type=int, default=20000)
    parser.add_argument("--valid-jets", type=int, default=4000)
    parser.add_argument("--test-jets", type=int, default=20000)
    parser.add_argument("--constituents", type=int, default=32)
    parser.add_argument("--correlation", type=int, default=3)
    parser.add_argument("--epochs-lorentz", type=int, default=3)
    parser.add_argument("--epochs-baseline", type=int, default=30)
    parser.add_argument("--test-rapidity", type=float, default=1.0)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=0, help="initialisation and batch order (the jets stay the same)")
    parser.add_argument("--models", default="lorentz_mace,deepsets_four_momenta,mlp_four_momenta,deepsets_jet_frame,mlp_jet_frame")
    parser.add_argument("--output", default="")
    args = parser.parse_args()
    if args.output:
        check_output_file(args.output, "--output")
    torch.set_num_threads(1)

    train_valid = make_jets(args.train_jets + args.valid_jets, seed=0, max_constituents=args.constituents)
    train_set = train_valid.subset(np.arange(args.train_jets))
    valid_set = train_valid.subset(np.arange(args.train_jets, len(train_valid)))
    test_set = make_jets(args.test_jets, seed=1, max_constituents=args.constituents)
    boosted_set = test_set.transformed(random_frames(len(test_set), args.test_rapidity, seed=2))

    def standardisation(features: str) -> Tuple[torch.Tensor, torch.Tensor]:
        """Mean and standard deviation [4] of the training constituents' baseline inputs."""
        momenta, mask = torch.tensor(train_set.momenta, dtype=torch.float32), torch.tensor(train_set.mask)
        raw = jet_frame(momenta, mask) if features == "jet_frame" else momenta
        values = raw[mask]  # [n_constituents, 4]
        shift = values.mean(dim=0) if features == "jet_frame" else torch.zeros(4)
        return shift, values.std(dim=0)

    builders = {"lorentz_mace": lambda: (LorentzMACE(correlation=args.correlation), args.epochs_lorentz, True)}
    for features in FEATURES:
        builders[f"deepsets_{features}"] = lambda f=features: (DeepSets(70, f, *standardisation(f)), args.epochs_baseline, True)
        builders[f"mlp_{features}"] = lambda f=features: (
            FlatMLP(args.constituents, 88, f, *standardisation(f)),
            args.epochs_baseline,
            False,
        )
    results = {
        "command": " ".join(["python"] + sys.argv),
        "settings": vars(args),
        "models": {},
    }
    unknown = sorted(set(filter(None, args.models.split(","))) - set(builders))
    if unknown:
        parser.error(f"unknown model(s) {', '.join(unknown)}; choose from {', '.join(builders)}")
    # no training: how far the jet mass alone separates the classes (a Lorentz invariant; it has
    # no natural threshold, so no accuracy)
    results["jet_mass"] = {}
    for split, sample in (("test", test_set), ("test_boosted", boosted_set)):
        results["jet_mass"][split] = roc_metrics(-np.abs(jet_mass(sample) - TOP_MASS), sample.label)
        del results["jet_mass"][split]["accuracy"]
    for name in filter(None, args.models.split(",")):
        torch.manual_seed(args.seed)
        model, epochs, trim = builders[name]()
        print(f"{name}: {parameter_count(model)} parameters, {epochs} epochs", flush=True)
        record = train(model, train_set, valid_set, epochs, lr=args.lr, batch_size=128, trim=trim, seed=args.seed)
        record["parameters"] = parameter_count(model)
        start = time.time()
        record["test"] = roc_metrics(predict(model, test_set, trim), test_set.label)
        record["test_boosted"] = roc_metrics(predict(model, boosted_set, trim), boosted_set.label)
        record["test_seconds"] = (time.time() - start) / 2
        results["models"][name] = record
        print(f"  test {record['test']}\n  boosted {record['test_boosted']}", flush=True)

    print("\n| model | parameters | epochs (best) | train s | test acc | test AUC | 1/eps_B @ eps_S=0.3 | boosted acc | boosted AUC | boosted 1/eps_B |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, r in results["models"].items():
        t, b = r["test"], r["test_boosted"]
        print(
            f"| {name} | {r['parameters']:,} | {len(r['history'])} ({r['best_epoch']}) | {r['train_seconds']:.0f} | "
            f"{t['accuracy']:.4f} | {t['auc']:.4f} | {t['rejection_30']:.1f} | {b['accuracy']:.4f} | {b['auc']:.4f} | {b['rejection_30']:.1f} |"
        )
    t = results["jet_mass"]["test"]
    print(f"| -\\|m_jet - {TOP_MASS:.0f} GeV\\| (no training) | 0 | | | | {t['auc']:.4f} | {t['rejection_30']:.1f} | | | |")
    if args.output:
        with atomic_output(args.output, "w") as stream:
            json.dump(results, stream, indent=1)


if __name__ == "__main__":
    main()
