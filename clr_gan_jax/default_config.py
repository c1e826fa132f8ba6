"""Every config field, with its default and meaning. Experiment files in configs/ start from `base_config()`.

Override any field on the command line: ``--config.train.steps=2000 --config.clr.enabled=False``.
A field marked with a method or architecture name is read by that one only.
"""

import ml_collections
from ml_collections import config_dict

# The zoo's conditional GANs (plus a projection discriminator), by name: the fields each sets, besides
# model.num_classes, in configs/cifar10_zoo.py and configs/digits_dcgan_clr.py.
CONDITIONAL = {
    "cgan": {"model.g_conditioning": "concat", "model.d_conditioning": "concat"},
    "cgan_cbn": {"model.g_conditioning": "cbn", "model.d_conditioning": "concat"},
    "acgan": {"model.g_conditioning": "cbn", "model.d_conditioning": "none", "aux_classifier.enabled": True},
    "projection": {"model.g_conditioning": "cbn", "model.d_conditioning": "projection"},
}

# The CLR paper's comparison objectives, by name: the fields each sets in configs/cifar10_zoo.py and
# configs/digits_dcgan_clr.py. RealnessGAN as its official code runs it (scripts/run_CelebA.sh, DCGAN_model.py: 51
# outcomes, skews +-1, spectral norm in D), with G's objective 3 (the scripts') or 1 or 2; AdaptiveMix's official
# weights are the defaults of the adaptivemix section.
_REALNESS = {
    "loss.adversarial": "realness",
    "model.d_outputs": 51,
    "model.spectral_norm": True,
    "realness.anchors": "normal_uniform",
    "realness.positive_skew": 1.0,
    "realness.negative_skew": -1.0,
}
COMPARISONS = {
    **{
        f"realness{suffix}": {**_REALNESS, "realness.objective": g}
        for suffix, g in (("", 3), ("_obj1", 1), ("_obj2", 2))
    },
    "adaptivemix": {"adaptivemix.enabled": True},
}


def base_config() -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.seed = 0  # seeds initialisation, latents, data order and the fixed sample latents
    # gan: the GAN zoo's loop (train.n_critic D updates, then one G update) | stylegan2: StyleGAN2-ADA's four
    # phases (G, G path-length every train.g_reg_interval steps, D, D R1 every train.d_reg_interval steps) |
    # veegan: VEEGAN's three networks (train.n_critic D updates on (x, z) pairs, then G, then the reconstructor F)
    c.method = "gan"

    c.data = ml_collections.ConfigDict()
    # ring8 | grid25 | digits | stacked_digits | cifar10 | celeb_a | lsun/<category> | images | shards
    c.data.name = "digits"
    c.data.resolution = 32  # image side in pixels (dcgan, stylegan2: a power of two >= 8; shards: must match)
    c.data.path = ""  # images: folder, zip or LMDB; shards: dataset-tool output dir; TFDS: data_dir ("" = default)
    c.data.split = "train"  # TFDS split
    c.data.transform = "none"  # images: none | resize | center-crop | center-crop-wide (see the dataset tool)
    c.data.skip_bad = False  # images: replace unreadable images by the next good one (logged once) instead of stopping
    c.data.channels = 3  # images: 1 (grayscale) or 3 (the embedded and TFDS sets have their own)
    c.data.mirror = False  # random x-flips of training images
    c.data.num_workers = 0  # grain worker processes reading data (0: read in the main process)
    c.data.source_seed = 0  # seed that draws the fixed 2-D mixture samples / stacked-digit triples

    c.model = ml_collections.ConfigDict()
    # dcgan (SimpleCNN) | mlp (SimpleMLP, 2-D points) | stylegan2 (the official networks) | eigengan (the zoo's
    # EigenGAN: a subspace per G layer)
    c.model.arch = "dcgan"
    c.model.z_dim = 100  # latent size; CLR's phi has the same size
    # dcgan, stylegan2: a conditional model of this many classes (labels from the data); 0 = off
    c.model.num_classes = 0
    # dcgan, num_classes > 0: how G takes the label: concat (one-hot appended to z, CGAN) | cbn (per-class BatchNorm
    # scale and shift); how D does: concat (one-hot maps appended to the image) | projection (<embed(y), features>
    # added to the logit) | none (ACGAN: the aux_classifier plugin's class head instead)
    c.model.g_conditioning = "concat"
    c.model.d_conditioning = "concat"
    c.model.g_width = 1024  # dcgan: G channels at 4x4, halved per upsampling
    c.model.d_width = 1024  # dcgan: D channels at 4x4, halved per stage towards the input
    c.model.hidden = 256  # mlp: hidden units
    c.model.depth = 2  # mlp: hidden-to-hidden layers
    # dcgan, mlp: width of D's logit head; > 1 gives D's logits as (N, d_outputs), RealnessGAN's outcomes
    # (loss.adversarial='realness' needs >= 2; every other loss 1)
    c.model.d_outputs = 1
    c.model.spectral_norm = False  # dcgan, mlp: spectral normalisation of every D layer but the heads (SNGAN)
    # dcgan: BatchNorm in G and D (False: the zoo's with_bn: false, its InfoGAN setting); mlp: BatchNorm before G's
    # activations and D's but the first (the zoo's VEEGAN MLPs; the SimpleMLP configs set False)
    c.model.batch_norm = True
    # eigengan: subspace dimensions per G layer; model.z_dim holds (stages x eigen_basis) layer coordinates, then
    # G's input noise (stages = log2(resolution) - 2); g_width / d_width are the channels at 4x4
    c.model.eigen_basis = 6
    c.model.eigen_ortho = 1.0  # eigengan: weight of the bases' orthogonality penalty in G's loss (g_ortho)
    # dcgan: operand dtype of the layers' matrix products (forward and input gradients; weight
    # gradients, activations, BatchNorm, losses and optimizer stay float32): float32 | bfloat16,
    # ~1.1-1.3x faster DCGAN+CLR steps on CPUs with avx512_bf16 (bench/train_step.py), less exact
    c.model.matmul_dtype = "float32"
    c.model.w_dim = 512  # stylegan2: width of w
    c.model.mapping_layers = 8  # stylegan2: mapping network depth (the official auto and cifar cfgs: 2)
    c.model.channel_base = 16384  # stylegan2: channels at resolution r are min(channel_base / r, channel_max)
    c.model.channel_max = 512  # stylegan2
    c.model.g_architecture = "skip"  # stylegan2: orig | skip | resnet
    c.model.d_architecture = "resnet"  # stylegan2: orig | skip | resnet
    c.model.mbstd_group_size = 4  # stylegan2: minibatch-std group size (over the global batch)
    # stylegan2: the top num_fp16_res resolutions of G and D compute in compute_dtype (bfloat16 on GPU/TPU:
    # the official fp16), their convolutions clamped to +-conv_clamp (official: 4 and 256; 0 and 0 = off)
    c.model.num_fp16_res = 0
    c.model.conv_clamp = 0.0
    c.model.compute_dtype = "float32"  # stylegan2: float32 | bfloat16

    c.loss = ml_collections.ConfigDict()
    # gan: vanilla (non-saturating) | hinge | lsgan | wgan | realness (RealnessGAN: needs model.d_outputs >= 2 and
    # reads the realness section) (stylegan2: non-saturating)
    c.loss.adversarial = "vanilla"
    c.loss.r1_gamma = 0.0  # R1 penalty (gamma/2) E||grad D(x)||^2 on reals; 0 disables it
    c.loss.gp_weight = 0.0  # gan: WGAN-GP, weight * E(||grad D(x_hat)|| - 1)^2 on interpolates x_hat; 0 = off
    # gan: x_hat = a x + (1-a) G(z), a ~ U(0,1): per_sample (the WGAN-GP paper) | per_batch (the GAN zoo)
    c.loss.gp_interpolation = "per_sample"
    c.loss.pl_weight = 2.0  # stylegan2: path-length penalty weight (0 disables the G regularisation phase)
    c.loss.pl_batch_shrink = 2  # stylegan2: the path-length phase uses batch / pl_batch_shrink
    c.loss.pl_decay = 0.01  # stylegan2: decay of the path-length mean
    c.loss.style_mixing_prob = 0.9  # stylegan2: probability of mixing two latents' ws at a random cutoff

    # RealnessGAN (loss.adversarial='realness'): D's model.d_outputs outcomes on linspace(negative_skew,
    # positive_skew), anchors A0 (fake) and A1 (real) shifted by negative_skew and positive_skew
    c.realness = ml_collections.ConfigDict()
    c.realness.anchors = "normal_uniform"  # normal_uniform (official code: A0 N(0,0.1), A1 U(-1,1)) | skewnorm (-5, 5)
    c.realness.positive_skew = 1.0  # official: 1
    c.realness.negative_skew = -1.0  # official: -1
    # G's objective: 1 -KL(A0||D(G(z))) | 2 KL(A1||D(G(z))) - KL(A0||D(G(z))) | 3 KL(D(x)||D(G(z))) - KL(A0||D(G(z)))
    # (3: both official scripts, relativisticG)
    c.realness.objective = 3
    # veegan (method='veegan', model.arch='mlp'): a reconstructor F(x) -> z and a joint D on (x, z) pairs
    c.veegan = ml_collections.ConfigDict()
    c.veegan.w_rec = 1.0  # weight of MSE(F(G(z)), z) in G's and F's losses (the zoo's lambda_rec)
    c.veegan.latent_noise = 1.0  # std of the Gaussian noise added to F(x) in D's data pairs (the zoo's 1)

    c.clr = ml_collections.ConfigDict()
    c.clr.enabled = True  # False gives the plain GAN baseline
    c.clr.w_clr = 5.0  # weight of latent restoration dist(z, phi(G(z))) in D's loss
    c.clr.w_rec = 0.5  # weight of reconstruction dist(x, G(phi(x))) in G's loss
    c.clr.distance = "mse"  # mse (official code) | l1 (paper)
    # head: a linear head of width z_dim on D's penultimate features (the zoo's networks) | features: those
    # features themselves (the official StyleGAN2 code: the epilogue FC output, as wide as z)
    c.clr.phi = "head"

    # ACGAN's auxiliary classifier (needs model.num_classes > 0): a class head on D's features; D's loss adds
    # weight * CE(real class) (the zoo's), G's loss weight * CE(fake class)
    c.aux_classifier = ml_collections.ConfigDict()
    c.aux_classifier.enabled = False
    c.aux_classifier.weight = 1.0
    c.aux_classifier.fakes_in_d = False  # True: D's loss adds weight * CE(fake class) too (the ACGAN paper's L_C)

    # InfoGAN (gan method): G reads [z, codes], codes = one categorical (one-hot) and `continuous` N(0, 1) codes;
    # Q heads on D's features read them back; D's and G's losses add cat_weight * CE + cont_weight * MSE on fakes
    c.infogan = ml_collections.ConfigDict()
    c.infogan.enabled = False
    c.infogan.categories = 10  # values of the categorical code (0: none)
    c.infogan.continuous = 2  # continuous codes
    c.infogan.cat_weight = 1.0  # the zoo's lambda_cond_disc
    c.infogan.cont_weight = 1.0  # the zoo's lambda_cond_cont

    # GLeaD (stylegan2 only; configs/glead.py): D's linear decoder gives an image, a G feature map and a w from
    # which G's synthesis blocks above res_g, as a frozen decoder, must rebuild D's input (D's loss only)
    c.glead = ml_collections.ConfigDict()
    c.glead.enabled = False
    c.glead.res_g = 64  # G's block resolution the decoding starts from (official: 64 FFHQ, 32 LSUN)
    c.glead.decoder_res = 64  # D's decoder output resolution (official: 64)
    c.glead.real_weight = 10.0  # weight of the real reconstruction real_distance(x, G_above(D(x)))
    c.glead.real_distance = "lpips"  # lpips (official) | mse
    c.glead.fake_target = "gfeat"  # gfeat: G's res_g feature of the fake (GLeaD + GGDR) | gfwimage: the fake
    c.glead.fake_weight = 10.0  # official: 10 for gfeat, 3 for gfwimage
    c.glead.fake_distance = "cosine"  # gfeat: cosine | mse; gfwimage: lpips | mse
    c.glead.in_dreg = True  # the official code adds the real reconstruction in D's R1 phase too (gain 16)
    c.glead.lpips_weights = ""  # LPIPS AlexNet .npz (metrics/convert_lpips.py), needed by the lpips distances

    # AdaptiveMix (objectives/adaptivemix.py): D's features of lam x + (1-lam) x' (pairs of one batch, lam ~
    # Beta(alpha, alpha)) must have cosine 1 with lam f(x) + (1-lam) f(x') + N(0, noise_std^2); reals and fakes
    c.adaptivemix = ml_collections.ConfigDict()
    c.adaptivemix.enabled = False
    c.adaptivemix.weight = 1.0  # weight of the reals' and the fakes' terms in D's loss (official: 1)
    c.adaptivemix.g_weight = 1.0  # weight of the fakes' term in G's loss, D frozen (official: 1; 0 = D only)
    c.adaptivemix.alpha = 1.0  # Beta(alpha, alpha) of the mixing weight (official: 1, i.e. U(0, 1))
    c.adaptivemix.noise_std = 0.05  # std of the noise added to the mixed features (official scripts: 0.05)

    # ADA (StyleGAN2-ADA's augmentation, any method): every image D sees, real or fake, is augmented, each
    # transform of the pipe running on a sample with probability p; p adapts so that the mean sign of D's
    # logits on augmented reals stays near augment.target
    c.augment = ml_collections.ConfigDict()
    # "" (none) | blit | geom | color | filter | noise | cutout | bg | bgc (the paper's) | bgcf | bgcfn | bgcfnc
    c.augment.pipe = ""
    c.augment.p = 0.0  # p at the start of a run (the official --p); with target 0, the fixed p
    c.augment.target = 0.6  # the mean sign of D(aug(real)) p steers towards; 0 = fixed p (never adjusted)
    c.augment.interval = 4  # steps between adjustments of p
    # images (real images per step x steps) in which p can move by 1: each adjustment moves it by
    # images_per_step * interval / (kimg * 1000) (official: 500; 100 when resuming, where p restarts at 0)
    c.augment.kimg = 500.0

    c.optim = ml_collections.ConfigDict()
    c.optim.name = "adam"  # adam | rmsprop (as torch.optim.RMSprop: decay b2, eps outside the square root)
    c.optim.g_lr = 2e-4  # learning rate of G (stylegan2: before the lazy-regularisation scaling)
    c.optim.d_lr = 2e-4  # learning rate of D (stylegan2: before the lazy-regularisation scaling)
    c.optim.b1 = 0.5  # Adam's beta1
    c.optim.b2 = 0.999  # Adam's beta2; RMSprop's squared-gradient decay (torch's alpha, 0.99)
    c.optim.eps = 1e-8
    c.optim.d_clip = 0.0  # gan: WGAN, clip every D parameter to [-d_clip, d_clip] after each D update; 0 = off

    c.train = ml_collections.ConfigDict()
    c.train.steps = 10000  # train steps (gan: one G update each, after n_critic D updates)
    c.train.batch_size = 64  # global batch, split over all devices
    c.train.n_critic = 1  # gan: D updates per G update, each on its own real batch (the G update reads the first)
    c.train.ema_decay = 0.999  # gan: EMA of G's weights used for samples and exports (0: a copy of G)
    c.train.ema_kimg = 10.0  # stylegan2: the EMA's half-life in thousands of images
    c.train.ema_rampup = 0.0  # stylegan2: half-life at most ema_rampup * images seen (0: no ramp-up)
    c.train.g_reg_interval = 4  # stylegan2: steps between path-length phases (lr and betas scaled by k/(k+1))
    c.train.d_reg_interval = 16  # stylegan2: steps between R1 phases (lr and betas scaled by k/(k+1))
    c.train.log_every = 50  # steps between metric lines (the only host syncs of the loop)
    c.train.sample_every = 1000  # steps between sample grids from the EMA generator
    c.train.checkpoint_every = 1000  # steps between checkpoints (the last step is always saved)
    c.train.keep_checkpoints = 3  # checkpoints kept on disk
    c.train.num_samples = 64  # images per sample grid (points per scatter plot: 40x this)

    c.eval = ml_collections.ConfigDict()  # metrics of the EMA generator, in the loop and in --mode=evaluate
    # comma-separated: fid,kid,is,pr (need inception_weights) | mixture | digits | stacked_digits; "" = none
    c.eval.metrics = ""
    c.eval.every = 1000  # steps between in-loop evaluations (the last step is always evaluated)
    c.eval.num_samples = 10000  # generated samples per evaluation (FID is biased upwards below ~10k)
    c.eval.batch_size = 256  # samples per generator / metric-network call, split over all devices
    c.eval.num_real = config_dict.placeholder(int)  # real images for the Inception statistics (None = all)
    c.eval.inception_weights = ""  # the converted FID Inception .npz (see the README); needed by fid, kid, is, pr
    c.eval.resize_mode = "pytorch"  # Inception input resize: pytorch (pytorch-fid) | tf1 (original TF FID code)
    c.eval.cache_dir = "~/.cache/clr_gan_jax"  # reference Inception statistics, shared by runs on the same data
    c.eval.best_metric = ""  # a result key of eval.metrics, e.g. fid or digits_fd: keep <workdir>/best; "" = no best
    return c
