"""The recipes of docs/training.md: σ from the daemon running each config/examples file against σ
drawn by the trainer's own sampling code (diffusers for SD3 and Flux, Mochi's fine-tuner restated).

Two-sample Kolmogorov–Smirnov tests with fixed seeds. Each case also runs the same test against the
plausible mistake (no shift, the wrong shift, the mean's sign kept, diffusers' unshifted Flux σ)
and requires it to be told apart at the same sample size, so a pass means the recipe matches.
"""

from __future__ import annotations

import math

import ml_dtypes
import numpy as np
import pytest
import torch
import yaml
from diffusers import FlowMatchEulerDiscreteScheduler
from diffusers.training_utils import compute_density_for_timestep_sampling
from scipy import stats

from tests.exchange import Session, as_f64, receive, ulp
from tests.harness import REPO_ROOT, merge

P_MIN = 1e-4
EXAMPLES = REPO_ROOT / "config" / "examples"
DAEMON_SEED = 2024
TRAINER_SEED = 7
SAMPLES = 4096
# Batches sent ahead of the ones received: the daemon's queues hold them, so no send blocks.
IN_FLIGHT = 4
NUM_TRAIN_TIMESTEPS = 1000


def example(name: str, overrides: dict | None = None) -> dict:
    """A config/examples file as the daemon reads it, with test-only keys merged over it."""
    return merge(yaml.safe_load((EXAMPLES / name).read_text()), {"seed": DAEMON_SEED, **(overrides or {})})


def daemon_sigma(noised, shape: tuple[int, ...], count: int, batch: int, *, dtype=np.float32,
                 first_id: int = 0) -> np.ndarray:
    """σ the daemon draws for `count` samples of latent shape [batch, *shape].

    Explicit noise ids make σ a function of (seed, id) alone, whatever order the workers finish in.
    """
    assert count % batch == 0, f"count {count} is not a multiple of the batch {batch}"
    latents = np.zeros((batch, *shape), dtype)
    sigma, ids = [], []
    with Session(noised) as session:
        def take_one():
            got = receive(session.consumer, 1)[0]
            assert got["sigma"].shape == (batch,), f"sigma has shape {got['sigma'].shape}, not [{batch}]"
            sigma.append(np.array(got["sigma"], np.float64))
            ids.append(np.array(got["noise_id"], np.uint64))

        for sent, start in enumerate(range(first_id, first_id + count, batch), start=1):
            session.send({"latents": latents, "noise_id": np.arange(start, start + batch, dtype=np.uint64)})
            while sent - len(sigma) > IN_FLIGHT:
                take_one()
        while len(sigma) < count // batch:
            take_one()
    sigma, ids = np.concatenate(sigma), np.concatenate(ids)
    np.testing.assert_array_equal(np.sort(ids), np.arange(first_id, first_id + count, dtype=np.uint64))
    return sigma[np.argsort(ids)]


def ks_pvalue(a, b) -> float:
    return stats.ks_2samp(np.asarray(a, np.float64), np.asarray(b, np.float64)).pvalue


# --- SD3 / SD3.5 LoRA: diffusers examples/dreambooth/train_dreambooth_lora_sd3.py ---------------

# The script's defaults and the scheduler config SD3 and SD3.5 ship; the daemon's side comes from
# the example file alone, so a wrong example fails here.
SD3_SHIFT = 3.0
SD3_LOGIT_STD = 1.0


def sd3_script_sigma(count: int, *, logit_mean: float, logit_std: float, shift: float,
                     generator: torch.Generator) -> np.ndarray:
    """σ as the diffusers SD3 LoRA script draws it (huggingface/diffusers,
    examples/dreambooth/train_dreambooth_lora_sd3.py: the training loop and its get_sigmas), with
    the scheduler the SD3 and SD3.5 checkpoints ship: FlowMatchEulerDiscreteScheduler, 1000 steps."""
    scheduler = FlowMatchEulerDiscreteScheduler(num_train_timesteps=NUM_TRAIN_TIMESTEPS, shift=shift)
    u = compute_density_for_timestep_sampling(weighting_scheme="logit_normal", batch_size=count,
                                              logit_mean=logit_mean, logit_std=logit_std, mode_scale=1.29,
                                              generator=generator)
    indices = (u * scheduler.config.num_train_timesteps).long()
    timesteps = scheduler.timesteps[indices]
    # get_sigmas: each timestep looked up in the schedule, its σ taken from the same place.
    step_indices = [(scheduler.timesteps == t).nonzero().item() for t in timesteps]
    return scheduler.sigmas[step_indices].numpy().astype(np.float64)


@pytest.mark.parametrize("script_logit_mean", [0.0, 0.5])
def test_sd3_sigma_matches_the_diffusers_lora_script(daemon, script_logit_mean):
    config = example("sd3-logit-normal-shift3.yaml")
    (keyframe,) = config["schedule"]["curriculum"]
    if script_logit_mean != 0.0:
        # The script indexes the schedule from its noisy end: its --logit_mean m is noised's mean -m.
        keyframe["mean"] = -script_logit_mean
    got = daemon_sigma(daemon(config), (16, 4, 4), SAMPLES, 256)
    generator = torch.Generator().manual_seed(TRAINER_SEED)

    def script(logit_mean=script_logit_mean, shift=SD3_SHIFT):
        return sd3_script_sigma(SAMPLES, logit_mean=logit_mean, logit_std=SD3_LOGIT_STD, shift=shift,
                                generator=generator)

    assert ks_pvalue(got, script()) >= P_MIN, (
        f"noised's σ under {keyframe} differs from the SD3 script's at --logit_mean {script_logit_mean}")
    assert ks_pvalue(got, script(shift=1.0)) < P_MIN, "the test cannot tell shift 3 from no shift"
    assert ks_pvalue(got, script(shift=2.0)) < P_MIN, "the test cannot tell shift 3 from shift 2"
    if script_logit_mean != 0.0:
        assert ks_pvalue(got, script(logit_mean=-script_logit_mean)) < P_MIN, "the test cannot tell the mean's sign"


def test_sd3_index_path_quantises_sigma_to_the_schedule_levels(daemon):
    """The script's σ lies on the scheduler's 1000 levels, from 1 down to the last; noised's is
    continuous. Mapped onto those levels the script's way, the two agree too."""
    shift = SD3_SHIFT
    got = daemon_sigma(daemon(example("sd3-logit-normal-shift3.yaml")), (16, 4, 4), SAMPLES, 256)
    scheduler = FlowMatchEulerDiscreteScheduler(num_train_timesteps=NUM_TRAIN_TIMESTEPS, shift=shift)
    levels = scheduler.sigmas[:NUM_TRAIN_TIMESTEPS].numpy().astype(np.float64)
    assert np.unique(levels).size == NUM_TRAIN_TIMESTEPS and levels[0] == 1.0

    script = sd3_script_sigma(SAMPLES, logit_mean=0.0, logit_std=SD3_LOGIT_STD, shift=shift,
                              generator=torch.Generator().manual_seed(TRAINER_SEED))
    assert np.isin(script, levels).all(), "the script's σ left the scheduler's levels"
    assert script.min() >= levels[-1]
    assert np.unique(got).size > 0.99 * SAMPLES, "noised's σ should be continuous, not on a grid"

    # Undo the shift, read the unshifted σ as the script's 1 - u, and index as the script does.
    unshifted = got / (shift - (shift - 1.0) * got)
    indices = np.clip(np.floor((1.0 - unshifted) * NUM_TRAIN_TIMESTEPS), 0, NUM_TRAIN_TIMESTEPS - 1)
    quantised = levels[indices.astype(np.int64)]
    assert np.abs(quantised - got).max() <= np.abs(np.diff(levels)).max(), "quantising moved σ past one level"
    assert ks_pvalue(quantised, script) >= P_MIN, "noised's σ on the script's levels differs from the script's"


# --- Flux: resolution-dependent shift -----------------------------------------------------------

# FLUX.1-dev's scheduler config: dynamic shifting with these anchors (its 'shift' is unused then).
FLUX_SCHEDULER = dict(num_train_timesteps=NUM_TRAIN_TIMESTEPS, shift=3.0, use_dynamic_shifting=True,
                      base_shift=0.5, max_shift=1.15, base_image_seq_len=256, max_image_seq_len=4096)


def flux_mu(image_seq_len: int, scheduler: FlowMatchEulerDiscreteScheduler) -> float:
    """mu linear in the packed token count through the scheduler's two anchors: diffusers'
    calculate_shift (pipelines/flux/pipeline_flux.py, which imports transformers) and kohya-ss
    sd-scripts' get_lin_function (library/flux_train_utils.py) are this line."""
    config = scheduler.config
    slope = (config.max_shift - config.base_shift) / (config.max_image_seq_len - config.base_image_seq_len)
    return config.base_shift + slope * (image_seq_len - config.base_image_seq_len)


def flux_shift_sigma(count: int, height: int, width: int, generator: torch.Generator) -> np.ndarray:
    """σ as kohya-ss/sd-scripts draws it for Flux with --timestep_sampling flux_shift
    --sigmoid_scale 1.0 (library/flux_train_utils.py, get_noisy_model_input_and_timesteps):
    sigmoid of a standard normal, then Flux's time_shift(mu, 1, σ) for the packed token count
    (h // 2) * (w // 2); the shift here is diffusers' FlowMatchEulerDiscreteScheduler.time_shift."""
    scheduler = FlowMatchEulerDiscreteScheduler(**FLUX_SCHEDULER)
    sigmas = torch.randn(count, generator=generator, dtype=torch.float64).sigmoid()
    mu = flux_mu((height // 2) * (width // 2), scheduler)
    return scheduler.time_shift(mu, 1.0, sigmas).numpy()


def diffusers_flux_script_sigma(count: int, generator: torch.Generator) -> np.ndarray:
    """σ of diffusers' examples/dreambooth/train_dreambooth_lora_flux.py (and train_dreambooth_flux.py)
    with --weighting_scheme logit_normal: the SD3 index path, but on FLUX.1-dev's scheduler, whose
    dynamic shifting leaves its training levels unshifted (the shift is applied at inference only)."""
    scheduler = FlowMatchEulerDiscreteScheduler(**FLUX_SCHEDULER)
    u = compute_density_for_timestep_sampling(weighting_scheme="logit_normal", batch_size=count,
                                              logit_mean=0.0, logit_std=1.0, generator=generator)
    indices = (u * scheduler.config.num_train_timesteps).long()
    return scheduler.sigmas[indices].numpy().astype(np.float64)


def test_flux_time_shift_is_the_shift_noised_applies():
    # exp(mu)/(exp(mu) + 1/t - 1) is the fixed shift s t/(1 + (s - 1) t) with s = exp(mu).
    scheduler = FlowMatchEulerDiscreteScheduler(**FLUX_SCHEDULER)
    t = torch.linspace(0.001, 0.999, 999, dtype=torch.float64)
    for seq_len, expected_mu in [(4096, 1.15), (1024, 0.63), (256, 0.5)]:
        mu = flux_mu(seq_len, scheduler)
        assert mu == pytest.approx(expected_mu, abs=1e-12)
        s = math.exp(mu)
        np.testing.assert_allclose(scheduler.time_shift(mu, 1.0, t).numpy(), (s * t / (1 + (s - 1) * t)).numpy(),
                                   rtol=1e-12)


FLUX_SHAPES = {"1024px": (16, 128, 128), "512px": (16, 64, 64)}
FLUX_SAMPLES = 1024
FLUX_BATCH = 16


def test_flux_sigma_matches_the_shifted_trainer_per_resolution(daemon):
    """One daemon, two resolutions (as bucketed batches arrive): each gets its own shift."""
    noised = daemon(example("flux-sequence-shift.yaml"))
    generator = torch.Generator().manual_seed(TRAINER_SEED)
    got, trainer = {}, {}
    for index, (name, shape) in enumerate(FLUX_SHAPES.items()):
        got[name] = daemon_sigma(noised, shape, FLUX_SAMPLES, FLUX_BATCH, dtype=ml_dtypes.bfloat16,
                                 first_id=index * FLUX_SAMPLES)
        trainer[name] = flux_shift_sigma(SAMPLES, shape[-2], shape[-1], generator)
    for name in FLUX_SHAPES:
        assert ks_pvalue(got[name], trainer[name]) >= P_MIN, f"{name}: noised's σ differs from the flux_shift trainer's"
    assert ks_pvalue(got["1024px"], trainer["512px"]) < P_MIN, "the test cannot tell 1024px's shift from 512px's"
    assert ks_pvalue(got["512px"], trainer["1024px"]) < P_MIN, "the test cannot tell 512px's shift from 1024px's"
    unshifted = diffusers_flux_script_sigma(SAMPLES, generator)
    for name in FLUX_SHAPES:
        assert ks_pvalue(got[name], unshifted) < P_MIN, (
            f"{name}: noised's shifted σ should differ from diffusers' unshifted Flux training σ")


# Packed as diffusers' FluxPipeline._pack_latents packs them: [B, (H/2)(W/2), 16 * 2 * 2].
FLUX_PACKED_SHAPES = {"1024px": (4096, 64), "512px": (1024, 64)}


def test_flux_packed_latents_get_the_shift_of_their_unpacked_shape(daemon):
    noised = daemon(example("flux-packed.yaml"))
    generator = torch.Generator().manual_seed(TRAINER_SEED)
    got = {name: daemon_sigma(noised, shape, FLUX_SAMPLES, FLUX_BATCH, dtype=ml_dtypes.bfloat16,
                              first_id=index * FLUX_SAMPLES)
           for index, (name, shape) in enumerate(FLUX_PACKED_SHAPES.items())}
    # The trainer shifts by the unpacked latent's height and width.
    trainer = {name: flux_shift_sigma(SAMPLES, shape[-2], shape[-1], generator) for name, shape in FLUX_SHAPES.items()}
    for name in FLUX_PACKED_SHAPES:
        assert ks_pvalue(got[name], trainer[name]) >= P_MIN, (
            f"{name}: noised's σ for packed {FLUX_PACKED_SHAPES[name]} differs from the flux_shift trainer's")
    assert ks_pvalue(got["1024px"], trainer["512px"]) < P_MIN, "the test cannot tell 1024px's shift from 512px's"


# --- Mochi 1: genmoai/mochi demos/fine_tuner/train.py -------------------------------------------

MOCHI_SHAPE = (12, 28, 60, 106)  # 163 frames at 480x848 through the VAE: [C, T, H, W]


def mochi_sigma(count: int, generator: torch.Generator) -> np.ndarray:
    """σ as Mochi's fine-tuner draws it (genmoai/mochi, demos/fine_tuner/train.py, get_batch):
    one clip per step, sigma = torch.rand(z.shape[:1], dtype=torch.float32), no shift."""
    return torch.cat([torch.rand((1,), generator=generator, dtype=torch.float32) for _ in range(count)]).numpy()


def test_mochi_sigma_matches_the_fine_tuner(daemon):
    noised = daemon(example("mochi-uniform.yaml"))
    got = daemon_sigma(noised, (12, 2, 6, 10), SAMPLES, 256, dtype=ml_dtypes.bfloat16)
    generator = torch.Generator().manual_seed(TRAINER_SEED)
    assert ks_pvalue(got, mochi_sigma(SAMPLES, generator)) >= P_MIN, "noised's σ differs from the fine-tuner's"
    shifted = mochi_sigma(SAMPLES, generator)
    shifted = 3.0 * shifted / (1.0 + 2.0 * shifted)
    assert ks_pvalue(got, shifted) < P_MIN, "the test cannot tell uniform σ from shifted σ"


def test_mochi_target_is_clean_minus_noise_on_real_shapes(daemon):
    """The fine-tuner builds z_sigma = (1 - σ) z + σ eps and trains on ut = z - eps. With the
    daemon's z_t, eps and z_0 (bf16 [1, 12, 28, 60, 106]) that is the same pair: z_t is the
    script's z_sigma up to bf16 rounding, and z_0 - z_t = σ ut."""
    config = example("mochi-uniform.yaml")
    assert config["output"]["include_clean"] is True, "the Mochi recipe needs z_0 for its target"
    noised = daemon(config)
    rng = np.random.default_rng(11)
    with Session(noised) as session:
        for index in range(3):
            z = rng.standard_normal((1, *MOCHI_SHAPE), dtype=np.float32).astype(ml_dtypes.bfloat16)
            session.send({"latents": z})
            got = receive(session.consumer, 1)[0]
            assert got["z_t"].dtype == got["eps"].dtype == got["z_0"].dtype == np.dtype(ml_dtypes.bfloat16)
            assert got["z_t"].shape == (1, *MOCHI_SHAPE)
            np.testing.assert_array_equal(got["z_0"].view(np.uint16), z.view(np.uint16))

            sigma = float(got["sigma"][0])
            z0, eps, z_t = as_f64(got["z_0"]), as_f64(got["eps"]), as_f64(got["z_t"])
            z_sigma = (1.0 - sigma) * z0 + sigma * eps
            ut = z0 - eps
            # z_t was rounded once from the f32 blend, whose eps the bf16 eps rounds by half an ulp.
            tolerance = ulp(z_sigma, ml_dtypes.bfloat16) + sigma * ulp(eps, ml_dtypes.bfloat16)
            assert np.all(np.abs(z_t - z_sigma) <= tolerance), (
                f"batch {index}: z_t is not (1 - σ) z_0 + σ eps at σ = {sigma}, "
                f"max error {np.abs(z_t - z_sigma).max()}")
            assert np.all(np.abs((z0 - z_t) - sigma * ut) <= tolerance + 1e-12), (
                f"batch {index}: z_0 - z_t is not σ (z_0 - eps) at σ = {sigma}")
