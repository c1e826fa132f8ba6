"""Every config field, with its default and meaning. Experiment files in configs/ start from `base_config()`.

Override any field on the command line: ``--config.train.steps=2000 --config.clr.enabled=False``.
"""

import ml_collections
from ml_collections import config_dict


def base_config() -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.seed = 0  # seeds initialisation, latents, data order and the fixed sample latents
    c.method = "gan"  # training procedure: gan (the GAN zoo's: train.n_critic D updates, then one G update)

    c.data = ml_collections.ConfigDict()
    c.data.name = (
        "digits"  # ring8 | grid25 | digits | stacked_digits | cifar10 | celeb_a | lsun/<category> | images | shards
    )
    c.data.resolution = (
        32  # image side in pixels (dcgan: a power of two >= 8; ignored for 2-D points; shards: must match)
    )
    c.data.path = ""  # images: folder or zip; shards: dataset-tool output dir; TFDS: data_dir ("" = TFDS default)
    c.data.split = "train"  # TFDS split
    c.data.transform = "none"  # images: none | resize | center-crop | center-crop-wide (see the dataset tool)
    c.data.skip_bad = False  # images: replace unreadable images by the next good one (logged once) instead of stopping
    c.data.channels = 3  # images: 1 (grayscale) or 3 (the embedded and TFDS sets have their own)
    c.data.mirror = False  # random x-flips of training images
    c.data.num_workers = 0  # grain worker processes reading data (0: read in the main process)
    c.data.source_seed = 0  # seed that draws the fixed 2-D mixture samples / stacked-digit triples

    c.model = ml_collections.ConfigDict()
    c.model.arch = "dcgan"  # dcgan (SimpleCNN, images) | mlp (SimpleMLP, 2-D points)
    c.model.z_dim = 100  # latent size; D's phi head has the same size
    c.model.g_width = 1024  # dcgan: G channels at 4x4, halved per upsampling
    c.model.d_width = 1024  # dcgan: D channels at 4x4, halved per stage towards the input
    c.model.hidden = 256  # mlp: hidden units
    c.model.depth = 2  # mlp: hidden-to-hidden layers
    c.model.spectral_norm = False  # spectral normalisation of every D layer but the heads (SNGAN), BatchNorm kept
    # dcgan: operand dtype of the layers' matrix products (forward and input gradients; weight
    # gradients, activations, BatchNorm, losses and optimizer stay float32): float32 | bfloat16,
    # ~1.1-1.3x faster DCGAN+CLR steps on CPUs with avx512_bf16 (bench/train_step.py), less exact
    c.model.matmul_dtype = "float32"

    c.loss = ml_collections.ConfigDict()
    c.loss.adversarial = "vanilla"  # vanilla (non-saturating) | hinge | lsgan | wgan
    c.loss.r1_gamma = 0.0  # R1 penalty (gamma/2) E||grad D(x)||^2 on reals; 0 disables it
    c.loss.gp_weight = 0.0  # WGAN-GP: weight * E(||grad D(x_hat)|| - 1)^2 on interpolates x_hat; 0 disables it
    c.loss.gp_interpolation = (
        "per_sample"  # x_hat = a x + (1-a) G(z), a ~ U(0,1): per_sample (paper) | per_batch (GAN zoo)
    )

    c.clr = ml_collections.ConfigDict()
    c.clr.enabled = True  # False gives the plain GAN baseline
    c.clr.w_clr = 5.0  # weight of latent restoration dist(z, phi(G(z))) in D's loss
    c.clr.w_rec = 0.5  # weight of reconstruction dist(x, G(phi(x))) in G's loss
    c.clr.distance = "mse"  # mse (official code) | l1 (paper)
    c.clr.phi = "head"  # head: a linear head of width z_dim on D's penultimate features | features: those features

    c.optim = ml_collections.ConfigDict()
    c.optim.name = "adam"  # adam | rmsprop (as torch.optim.RMSprop: decay b2, eps outside the square root)
    c.optim.g_lr = 2e-4  # learning rate of G
    c.optim.d_lr = 2e-4  # learning rate of D
    c.optim.b1 = 0.5  # Adam's beta1
    c.optim.b2 = 0.999  # Adam's beta2; RMSprop's squared-gradient decay (torch's alpha, 0.99)
    c.optim.eps = 1e-8
    c.optim.d_clip = 0.0  # WGAN: clip every D parameter to [-d_clip, d_clip] after each D update; 0 disables it

    c.train = ml_collections.ConfigDict()
    c.train.steps = 10000  # G updates (each preceded by n_critic D updates)
    c.train.batch_size = 64  # global batch, split over all devices
    c.train.n_critic = 1  # D updates per G update, each on its own real batch (the G update reads the first)
    c.train.ema_decay = 0.999  # EMA of G's weights used for samples and exports (0: a copy of G)
    c.train.log_every = 50  # steps between metric lines (the only host syncs of the loop)
    c.train.sample_every = 1000  # steps between sample grids from the EMA generator
    c.train.checkpoint_every = 1000  # steps between checkpoints (the last step is always saved)
    c.train.keep_checkpoints = 3  # checkpoints kept on disk
    c.train.num_samples = 64  # images per sample grid (points per scatter plot: 40x this)

    c.eval = ml_collections.ConfigDict()  # metrics of the EMA generator, in the loop and in --mode=evaluate
    c.eval.metrics = (
        ""  # comma-separated: fid,kid,is,pr (need inception_weights) | mixture | digits | stacked_digits; "" = none
    )
    c.eval.every = 1000  # steps between in-loop evaluations (the last step is always evaluated)
    c.eval.num_samples = 10000  # generated samples per evaluation (FID is biased upwards below ~10k)
    c.eval.batch_size = 256  # samples per generator / metric-network call, split over all devices
    c.eval.num_real = config_dict.placeholder(int)  # real images for the Inception statistics (None = all)
    c.eval.inception_weights = ""  # the converted FID Inception .npz (see the README); needed by fid, kid, is, pr
    c.eval.resize_mode = "pytorch"  # Inception input resize: pytorch (pytorch-fid) | tf1 (original TF FID code)
    c.eval.cache_dir = "~/.cache/clr_gan_jax"  # reference Inception statistics, shared by runs on the same data
    c.eval.best_metric = ""  # a result key of eval.metrics, e.g. fid or digits_fd: keep <workdir>/best; "" = no best
    return c
