"""Model definitions shared by the etpkg fixture scripts.

`FIXTURES` maps a fixture name to `(builder, example_inputs_fn)`. Builders
return a seeded, eval-mode module with random weights (never pretrained);
`example_inputs_fn` returns the tuple of positional inputs. Both are
deterministic so re-running the generators reproduces the same `.npy` files.
"""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision


def seed(s=0):
    torch.manual_seed(s)


def randomize_bn(model, s=1234):
    """Give every BatchNorm non-trivial running stats and affine params.

    Fresh BatchNorms have mean 0 / var 1 / weight 1 / bias 0, which hides
    bugs in BN folding or in the order of normalisation terms.
    """
    g = torch.Generator().manual_seed(s)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                n = m.num_features
                m.running_mean.copy_(torch.randn(n, generator=g) * 0.5)
                m.running_var.copy_(torch.rand(n, generator=g) * 1.5 + 0.5)
                if m.affine:
                    m.weight.copy_(torch.rand(n, generator=g) * 1.5 + 0.25)
                    m.bias.copy_(torch.randn(n, generator=g) * 0.2)
    return model


def finish(model, s=1234):
    return randomize_bn(model, s).eval()


def img(n=1, c=3, h=32, w=32, s=100):
    g = torch.Generator().manual_seed(s)
    return torch.randn(n, c, h, w, generator=g)


# ---------------------------------------------------------------------------
# Whole-network families
# ---------------------------------------------------------------------------

class GPTBlock(nn.Module):
    def __init__(self, d, n_head):
        super().__init__()
        self.n_head = n_head
        self.ln1 = nn.LayerNorm(d)
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.ln2 = nn.LayerNorm(d)
        self.fc = nn.Linear(d, 4 * d)
        self.fc_out = nn.Linear(4 * d, d)

    def forward(self, x):
        b, t, d = x.shape
        h = self.ln1(x)
        q, k, v = self.qkv(h).split(d, dim=2)
        # Split heads the nanoGPT way: view then transpose to [B, H, T, D/H].
        q = q.view(b, t, self.n_head, d // self.n_head).transpose(1, 2)
        k = k.view(b, t, self.n_head, d // self.n_head).transpose(1, 2)
        v = v.view(b, t, self.n_head, d // self.n_head).transpose(1, 2)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        y = y.transpose(1, 2).contiguous().view(b, t, d)
        x = x + self.proj(y)
        x = x + self.fc_out(F.gelu(self.fc(self.ln2(x))))
        return x


class GPT(nn.Module):
    def __init__(self, vocab=64, d=32, n_head=2, n_layer=2, block=16, tied=True):
        super().__init__()
        self.wte = nn.Embedding(vocab, d)
        self.wpe = nn.Embedding(block, d)
        self.blocks = nn.ModuleList([GPTBlock(d, n_head) for _ in range(n_layer)])
        self.ln_f = nn.LayerNorm(d)
        self.lm_head = nn.Linear(d, vocab, bias=False)
        if tied:
            self.lm_head.weight = self.wte.weight
        # LayerNorm defaults (weight 1, bias 0) would hide affine bugs.
        with torch.no_grad():
            for m in self.modules():
                if isinstance(m, nn.LayerNorm):
                    m.weight.uniform_(0.5, 1.5)
                    m.bias.normal_(0, 0.1)

    def forward(self, idx):
        t = idx.shape[1]
        pos = torch.arange(0, t, dtype=torch.long, device=idx.device)
        x = self.wte(idx) + self.wpe(pos)
        for blk in self.blocks:
            x = blk(x)
        return self.lm_head(self.ln_f(x))


def build_gpt():
    seed(1)
    return GPT().eval()


def gpt_inputs():
    g = torch.Generator().manual_seed(101)
    return (torch.randint(0, 64, (1, 16), generator=g, dtype=torch.long),)


class Conv1dNet(nn.Module):
    """Audio-style 1-D conv classifier: conv/bn/relu/pool stack, amax over time."""

    def __init__(self, cin=4, classes=6):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv1d(cin, 16, 5, padding=2), nn.BatchNorm1d(16), nn.ReLU(), nn.MaxPool1d(2),
            nn.Conv1d(16, 24, 3, padding=1), nn.BatchNorm1d(24), nn.ReLU(), nn.MaxPool1d(2),
            nn.Conv1d(24, classes, 3, stride=1, padding=1, bias=True),
        )

    def forward(self, x):
        y = self.features(x)
        y = torch.amax(y, dim=2)
        return torch.softmax(y, dim=1)


def build_conv1d_net():
    seed(2)
    return finish(Conv1dNet())


def conv1d_inputs():
    g = torch.Generator().manual_seed(102)
    return (torch.randn(1, 4, 64, generator=g),)


def build_mobilenet_v2_small():
    """torchvision MobileNetV2 (its own InvertedResidual blocks) with a short
    block list and a narrow head; the stock head is fixed at 1280 channels."""
    from torchvision.models.mobilenetv2 import MobileNetV2
    from torchvision.ops.misc import Conv2dNormActivation
    seed(3)
    setting = [[1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 1, 2]]  # 4 blocks, one skip add
    m = MobileNetV2(num_classes=10, width_mult=0.5, inverted_residual_setting=setting)
    cin = m.features[-1][0].in_channels
    m.features[-1] = Conv2dNormActivation(cin, 64, kernel_size=1, activation_layer=nn.ReLU6)
    m.classifier[1] = nn.Linear(64, 10)
    return finish(m)


def build_mobilenet_v3_small_small():
    """torchvision MobileNetV3 with a hand-picked short config covering SE,
    ReLU/Hardswish blocks, 3x3 and 5x5 depthwise, stride 1 and 2."""
    from torchvision.models.mobilenetv3 import InvertedResidualConfig as C, MobileNetV3
    seed(4)
    wm = 0.5
    setting = [
        C(16, 3, 16, 16, True, "RE", 2, 1, wm),
        C(16, 3, 72, 16, False, "RE", 1, 1, wm),     # residual, no SE
        C(16, 5, 96, 40, True, "HS", 2, 1, wm),
        C(40, 3, 120, 40, True, "HS", 1, 1, wm),
    ]
    return finish(MobileNetV3(setting, last_channel=32, num_classes=10))


class SmallResNet(nn.Module):
    """ResNet from torchvision BasicBlocks: 7x7/2 stem, maxpool 3/2/1, one downsample stage."""

    def __init__(self, classes=10):
        super().__init__()
        from torchvision.models.resnet import BasicBlock
        self.conv1 = nn.Conv2d(3, 8, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.layer1 = BasicBlock(8, 8)
        down = nn.Sequential(nn.Conv2d(8, 16, 1, stride=2, bias=False), nn.BatchNorm2d(16))
        self.layer2 = BasicBlock(8, 16, stride=2, downsample=down)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(16, classes)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer2(self.layer1(x))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def build_resnet_small():
    seed(5)
    return finish(SmallResNet())


def build_vit():
    seed(6)
    m = torchvision.models.VisionTransformer(
        image_size=32, patch_size=8, num_layers=2, num_heads=2,
        hidden_dim=32, mlp_dim=64, num_classes=10)
    # torchvision zero-initializes the classification head, which would make every output
    # exactly 0 and the parity check vacuous; give it random weights like the rest.
    with torch.no_grad():
        m.heads.head.weight.normal_(0.0, 0.2)
        m.heads.head.bias.normal_(0.0, 0.2)
    return m.eval()


# Full-size torchvision models (heavy tier / census only; not committed).
def build_tv_mobilenet_v2():
    seed(10)
    return finish(torchvision.models.mobilenet_v2(weights=None))


def build_tv_resnet18():
    seed(11)
    return finish(torchvision.models.resnet18(weights=None))


def build_tv_mobilenet_v3_small():
    seed(12)
    return finish(torchvision.models.mobilenet_v3_small(weights=None))


def img224():
    return (img(1, 3, 224, 224, s=110),)


def img32():
    return (img(),)


# ---------------------------------------------------------------------------
# Op-family fixtures: small models that each pin down a group of ops the
# families above (and their bigger relatives) use, including argument
# variants that the serializer omits when they equal the schema default.
# ---------------------------------------------------------------------------

def rand(*shape, s=0, lo=None, hi=None):
    g = torch.Generator().manual_seed(s)
    if lo is not None:
        return torch.rand(*shape, generator=g) * (hi - lo) + lo
    return torch.randn(*shape, generator=g)


class GroupedConv(nn.Module):
    def __init__(self):
        super().__init__()
        self.g2 = nn.Conv2d(8, 12, 3, padding=1, groups=2)             # grouped, not depthwise
        self.g4 = nn.Conv2d(12, 8, 3, stride=(2, 1), padding=(1, 2), dilation=(1, 2),
                            groups=4, bias=False)                      # asymmetric stride/pad/dilation
        self.dw_mult = nn.Conv2d(8, 16, 3, padding=1, groups=8)        # depthwise multiplier 2
        self.c1d = nn.Conv1d(8, 8, 3, padding=2, dilation=2, groups=2)
        self.bn = nn.BatchNorm2d(16)

    def forward(self, x):
        y = self.bn(self.dw_mult(self.g4(self.g2(x))))
        z = self.c1d(x.mean(dim=2))
        return y, z


class ConvTranspose(nn.Module):
    def __init__(self):
        super().__init__()
        self.t2 = nn.ConvTranspose2d(8, 6, 3, stride=2, padding=1, output_padding=1)
        self.t2g = nn.ConvTranspose2d(6, 4, 4, stride=2, padding=1, groups=2, bias=False)
        self.t1 = nn.ConvTranspose1d(8, 4, 5, stride=3, padding=2, output_padding=1, dilation=1)

    def forward(self, x, s):
        return self.t2g(torch.relu(self.t2(x))), self.t1(s)


class PoolingVariants(nn.Module):
    def forward(self, x):
        return (
            F.max_pool2d(x, 3, stride=2, ceil_mode=True),
            F.max_pool2d(x, 2),                                   # stride defaults to kernel
            F.max_pool2d(x, (3, 2), stride=(2, 1), padding=(1, 0), dilation=(1, 2)),
            F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=True),
            F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False),
            F.avg_pool2d(x, 3, stride=2, padding=1, ceil_mode=True, count_include_pad=False),
            F.avg_pool2d(x, 2),
            F.adaptive_avg_pool2d(x, 3),                          # 7 -> 3: overlapping windows
            F.adaptive_avg_pool2d(x, (2, 5)),
            F.adaptive_max_pool2d(x, 3),
            F.max_pool1d(x.flatten(2), 4, stride=3, ceil_mode=True),
            F.avg_pool1d(x.flatten(2), 4, stride=2),
            F.adaptive_avg_pool1d(x.flatten(2), 5),
        )


class ConcatSplit(nn.Module):
    def forward(self, x):
        a, b, c = torch.split(x, [2, 3, 1], dim=1)               # uneven split sizes
        p, q = torch.split(x, 4, dim=2)                          # split size, ragged last chunk
        c1, c2, c3 = torch.chunk(x, 3, dim=1)
        s = torch.stack([a[:, 0], c[:, 0], b[:, 1]], dim=1)
        s2 = torch.stack([p.sum(), q.sum()])
        u0, u1, u2 = torch.unbind(b, dim=1)
        cat = torch.cat([c, a, b * 2.0], dim=1)
        cat_neg = torch.cat((p, q, p), dim=-1)
        return cat, cat_neg, s, s2, u0 + u1 - u2, c1 * c3 + c2


def channel_shuffle(x, groups):
    b, c, h, w = x.shape
    x = x.view(b, groups, c // groups, h, w)
    x = torch.transpose(x, 1, 2).contiguous()
    return x.view(b, -1, h, w)


class Views(nn.Module):
    def forward(self, x):
        b, c, h, w = x.shape
        f = torch.flatten(x, 1)
        f2 = x.flatten(start_dim=2, end_dim=3)
        r = x.reshape(b, h, -1).transpose(1, 2)
        p = x.permute(0, 2, 3, 1).contiguous().view(b, h * w, c)
        sq = x[:, :1].squeeze(1)
        sq_all = x.mean(dim=(2, 3), keepdim=True).squeeze()      # squeeze() with no dim
        us = sq.unsqueeze(-1).unsqueeze(0)
        e = x[:, :, :1, :].expand(b, c, 4, w)
        e2 = x.mean(dim=1, keepdim=True).expand(-1, 3, -1, -1)
        rp = x[:, :2, :2, :2].repeat(1, 2, 3, 1)
        sl = x[:, 1:5:2]                                         # stepped slice
        sl2 = x[..., 0]                                          # select on last dim
        sl3 = x[:, -2:, 1:-1, ::3]                               # negative bounds
        t = x.mT
        sh = channel_shuffle(x, 2)
        return f, f2, r, p, sq, sq_all, us, e, e2, rp, sl, sl2, sl3, t, sh


class Elementwise(nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("scale", rand(1, 6, 1, 1, s=7))

    def forward(self, x, y):
        # x: [2, 6, 4, 5], y: [6, 1, 5] (broadcast both ways)
        pos = x.abs() + 0.1
        return (
            x + y, x - y, x * y, x / (y.abs() + 0.5),
            x + 2, x - 0.5, 3.0 * x, x / 4, 1 - x, 2.5 - y,      # scalar ops and rsub
            x * self.scale, x + 2 * y,                            # add with alpha-like pattern
            x ** 2, pos ** 0.5, pos ** y, torch.pow(2.0, y),
            torch.sqrt(pos), torch.rsqrt(pos), torch.exp(x), torch.log(pos),
            torch.abs(x), -x, torch.neg(y),
            torch.clamp(x, -0.5, 0.7), x.clamp(min=0.1), x.clamp(max=-0.1),
            torch.maximum(x, y), torch.minimum(x, y),
            torch.reciprocal(pos), torch.square(y), torch.sign(x), torch.floor(x * 3), torch.round(x * 3),
            torch.erf(x), torch.sin(x), torch.cos(x),
        )


class Reductions(nn.Module):
    def forward(self, x):
        mx, imx = torch.max(x, dim=1)
        mn, imn = x.min(dim=2, keepdim=True)
        return (
            x.sum(), x.sum(dim=1), x.sum(dim=(0, 2), keepdim=True),
            x.mean(), x.mean(dim=-1), x.mean(dim=(1, 2), keepdim=True),
            x.var(dim=1), x.var(dim=2, unbiased=False, keepdim=True), x.var(),
            x.std(dim=-1), x.std(dim=1, correction=0),
            torch.amax(x, dim=1), torch.amin(x, dim=(1, 2)), x.amax(),
            mx, imx, mn, imn,
            torch.argmax(x, dim=2), torch.argmin(x, dim=1, keepdim=True), torch.argmax(x),
            torch.prod(x, dim=1), (x * 0.5 + 1).prod(),
            torch.max(x), torch.min(x),
            torch.logsumexp(x, dim=1), torch.norm(x, dim=-1),
        )


class Activations(nn.Module):
    def forward(self, x):
        x3 = x * 4  # spread the range so clamps/kinks are exercised
        return (
            F.relu(x3), F.relu6(x3), F.leaky_relu(x3), F.leaky_relu(x3, 0.2), F.elu(x3),
            F.elu(x3, alpha=0.5), F.gelu(x3), F.gelu(x3, approximate="tanh"), F.silu(x3),
            torch.sigmoid(x3), torch.tanh(x3), F.hardswish(x3), F.hardsigmoid(x3),
            F.hardtanh(x3), F.hardtanh(x3, -2.0, 3.0), F.softplus(x3), F.softplus(x3, beta=2.0, threshold=5.0),
            F.log_softmax(x, dim=1), F.softmax(x, dim=-1), F.mish(x3), F.selu(x3), F.celu(x3),
            F.logsigmoid(x3), F.prelu(x3, torch.tensor([0.25])), F.softsign(x3), F.glu(x3, dim=-1),
        )


class Norms(nn.Module):
    def __init__(self):
        super().__init__()
        self.ln = nn.LayerNorm(8)
        self.ln2 = nn.LayerNorm([5, 8], eps=1e-3)
        self.ln_noaffine = nn.LayerNorm(8, elementwise_affine=False)
        self.gn = nn.GroupNorm(3, 6)
        self.gn1 = nn.GroupNorm(1, 6, eps=1e-3)
        self.inorm = nn.InstanceNorm2d(6)
        self.inorm_affine = nn.InstanceNorm2d(6, affine=True)
        self.bn = nn.BatchNorm2d(6)
        self.bn_noaffine = nn.BatchNorm2d(6, affine=False)
        self.bn1 = nn.BatchNorm1d(6, eps=1e-3)
        with torch.no_grad():
            for m in (self.ln, self.ln2, self.gn, self.gn1, self.inorm_affine):
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0, 0.2)

    def forward(self, x):
        # x: [2, 6, 5, 8]
        return (self.ln(x), self.ln2(x[0]), self.ln_noaffine(x), self.gn(x), self.gn1(x),
                self.inorm(x), self.inorm_affine(x), self.bn(x), self.bn_noaffine(x),
                self.bn1(x.mean(dim=3)), F.normalize(x, dim=1))


class Masking(nn.Module):
    def forward(self, x, m):
        # x: [1, 2, 6, 6] attention-score like; m: bool [1, 1, 6, 6] user mask
        t = x.shape[-1]
        causal = torch.tril(torch.ones(t, t, dtype=torch.bool))
        a = x.masked_fill(~causal, float("-inf")).softmax(dim=-1)
        upper = torch.triu(torch.ones(t, t), diagonal=1) == 1
        b = x.masked_fill(upper, -1e9)
        c = torch.where(m, x, torch.zeros_like(x))
        d = torch.where(x > 0, x, 0.1 * x)
        e = x.masked_fill(m, 0.5)
        f = torch.tril(x, diagonal=-1) + torch.triu(x, 2)
        return a, b, c, d, e, f, m & (x > 0), m | (x < -1), ~m


class Indexing(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(20, 6)
        self.emb_pad = nn.Embedding(20, 4, padding_idx=0)

    def forward(self, x, idx, gidx):
        # x: [3, 8, 5] f32, idx: [4] i64, gidx: [3, 2, 5] i64 in [0, 8)
        return (
            self.emb(idx), self.emb_pad(idx.view(2, 2)),
            torch.index_select(x, 1, idx), x.index_select(0, idx[:2] % 3),
            torch.gather(x, 1, gidx), torch.gather(x, 2, gidx[:, :, :3] % 5),
            x[:, idx],                                      # advanced indexing -> index.Tensor
            x[:, 1:5:2], x[..., 0], x[1], x[:, -1, 2:],
            torch.cumsum(x, dim=1), torch.cumsum(idx, dim=0),
            x.narrow(2, 1, 3), torch.flip(x, dims=[1]), torch.roll(x, 2, dims=1),
        )


class PadInterp(nn.Module):
    def forward(self, x):
        # x: [1, 3, 5, 6]
        return (
            F.pad(x, (1, 2)), F.pad(x, (1, 0, 2, 3), value=0.5), F.pad(x, (0, 0, 0, 0, 1, 1)),
            F.pad(x, (-1, 1, 0, -2)),                      # negative padding crops
            F.pad(x, (2, 1, 1, 2), mode="reflect"), F.pad(x, (2, 1, 1, 2), mode="replicate"),
            F.interpolate(x, scale_factor=2, mode="nearest"),
            F.interpolate(x, size=(7, 9), mode="nearest"),
            F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False),
            F.interpolate(x, size=(7, 9), mode="bilinear", align_corners=False),
            F.interpolate(x, size=(7, 9), mode="bilinear", align_corners=True),
            F.interpolate(x, size=(3, 5), mode="bilinear", align_corners=False),
            F.interpolate(x.flatten(2), scale_factor=2, mode="linear"),
            F.interpolate(x, size=(9, 12), mode="nearest"),
            F.pixel_shuffle(x[:, :1].repeat(1, 4, 1, 1), 2),
        )


class MatmulOps(nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("w", rand(5, 7, s=8))
        self.lin = nn.Linear(5, 3)
        self.lin_nobias = nn.Linear(5, 4, bias=False)

    def forward(self, a, b):
        # a: [2, 4, 5], b: [2, 5, 6]
        v = a[0, 0]
        return (
            torch.bmm(a, b), a @ b, torch.matmul(a, self.w),          # 3D x 2D broadcast
            torch.matmul(a.unsqueeze(1), b.unsqueeze(0)),              # [2,1,4,5] x [1,2,5,6]
            torch.matmul(v, b), torch.matmul(a, v), torch.dot(v, v),   # 1D cases
            torch.mm(a[0], b[1]), self.lin(a), self.lin_nobias(a[0]),
            torch.baddbmm(a[:, :, :1], a, b),
            a.expand(3, 2, 4, 5).sum(0),
        )


class TransformerEncoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.layer = nn.TransformerEncoderLayer(16, 2, 32, dropout=0.1, batch_first=True)
        self.layer_pre = nn.TransformerEncoderLayer(16, 4, 24, dropout=0.1, activation="gelu",
                                                    batch_first=True, norm_first=True)
        self.mha = nn.MultiheadAttention(16, 2, batch_first=True)

    def forward(self, x):
        y = self.layer_pre(self.layer(x))
        t = x.shape[1]
        mask = torch.triu(torch.full((t, t), float("-inf")), diagonal=1)
        z, w = self.mha(x, y, y, attn_mask=mask)
        return y, z, w


class IntOps(nn.Module):
    def forward(self, i, j, x):
        # i, j: i64 [2, 5]; x: f32 [2, 5]
        k = i * 3 + j - 2
        return (
            k, i // 3, torch.div(i, 2, rounding_mode="floor"), torch.div(-i, 2, rounding_mode="trunc"),
            i % 4, torch.remainder(-i, 3), torch.fmod(-i, 3),
            i / j.clamp(min=1),                                   # true division -> f32
            i == j, i != j, i < j, i <= 3, i > j, i >= 2,
            (i > 2) & (j < 5), (i > 2) | (j < 5), (i > 2) ^ (j > 2), ~(i > 2),
            (i > j).sum(dim=1), torch.where(i > j, i, j), i.max(), torch.maximum(i, j),
            i.to(torch.float32) * x, x.to(torch.int64), (x * 3).long(), (x > 0).float(),
            torch.abs(-i), i.neg(), i.clamp(1, 5), i.sum(dim=0), i.prod(dim=1),
            i << 1, i >> 1, (i > 1).any(), (i > 1).all(dim=1),
            x.masked_fill(i > 4, -1.0), i.float().mean(dim=1),
            torch.argmax(x, dim=1) + i[:, 0],
        )


class TinyGPTSeparateHead(GPT):
    """GPT variant with an untied head and 4 heads (head dim 8)."""

    def __init__(self):
        super().__init__(vocab=40, d=32, n_head=4, n_layer=1, block=8, tied=False)


class Classifier(nn.Module):
    """The bundled example project's model: a small CIFAR-style CNN classifier."""

    def __init__(self, classes=10):
        super().__init__()

        def cbr(cin, cout, stride=1):
            return [nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False),
                    nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]

        self.features = nn.Sequential(
            *cbr(3, 16), nn.MaxPool2d(2),        # 32 -> 16
            *cbr(16, 32), nn.MaxPool2d(2),       # 16 -> 8
            *cbr(32, 64, stride=2),              # 8 -> 4
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )
        self.classifier = nn.Sequential(nn.Dropout(0.1), nn.Linear(64, classes))

    def forward(self, x):
        return self.classifier(self.features(x))


def build_classifier():
    seed(7)
    return finish(Classifier(), 77)


def build(cls, s, *args):
    def b():
        seed(s)
        return finish(cls(*args), s + 1000)
    return b


def inputs(*specs):
    """specs: (shape, kind, seed[, lo, hi]) with kind f32 / i64 / bool."""
    def f():
        out = []
        for spec in specs:
            shape, kind, s = spec[:3]
            g = torch.Generator().manual_seed(s)
            if kind == "f32":
                out.append(torch.randn(*shape, generator=g))
            elif kind == "i64":
                lo, hi = spec[3], spec[4]
                out.append(torch.randint(lo, hi, shape, generator=g, dtype=torch.long))
            elif kind == "bool":
                out.append(torch.rand(*shape, generator=g) > 0.5)
        return tuple(out)
    return f


FIXTURES = {
    "mobilenet_v2": (build_mobilenet_v2_small, img32),
    "resnet": (build_resnet_small, img32),
    "mobilenet_v3": (build_mobilenet_v3_small_small, img32),
    "vit": (build_vit, img32),
    "gpt": (build_gpt, gpt_inputs),
    "conv1d_net": (build_conv1d_net, conv1d_inputs),
    "grouped_conv": (build(GroupedConv, 20), inputs(((1, 8, 9, 10), "f32", 200))),
    "conv_transpose": (build(ConvTranspose, 21), inputs(((1, 8, 5, 6), "f32", 201), ((1, 8, 7), "f32", 202))),
    "pooling_variants": (build(PoolingVariants, 22), inputs(((1, 3, 7, 7), "f32", 203))),
    "concat_split": (build(ConcatSplit, 23), inputs(((2, 6, 7), "f32", 204))),
    "views": (build(Views, 24), inputs(((2, 6, 4, 5), "f32", 205))),
    "elementwise": (build(Elementwise, 25), inputs(((2, 6, 4, 5), "f32", 206), ((6, 1, 5), "f32", 207))),
    "reductions": (build(Reductions, 26), inputs(((2, 3, 4), "f32", 208))),
    "activations": (build(Activations, 27), inputs(((2, 3, 8), "f32", 209))),
    "norms": (build(Norms, 28), inputs(((2, 6, 5, 8), "f32", 210))),
    "masking": (build(Masking, 29), inputs(((1, 2, 6, 6), "f32", 211), ((1, 1, 6, 6), "bool", 212))),
    "indexing": (build(Indexing, 30), inputs(((3, 8, 5), "f32", 213), ((4,), "i64", 214, 0, 8),
                                             ((3, 2, 5), "i64", 215, 0, 8))),
    "pad_interp": (build(PadInterp, 31), inputs(((1, 3, 5, 6), "f32", 216))),
    "matmul": (build(MatmulOps, 32), inputs(((2, 4, 5), "f32", 217), ((2, 5, 6), "f32", 218))),
    "transformer_encoder": (build(TransformerEncoder, 33), inputs(((1, 6, 16), "f32", 219))),
    "int_ops": (build(IntOps, 34), inputs(((2, 5), "i64", 220, -6, 10), ((2, 5), "i64", 221, -3, 8),
                                         ((2, 5), "f32", 222))),
    "gpt_untied": (build(TinyGPTSeparateHead, 35), inputs(((1, 8), "i64", 223, 0, 40))),
    "classifier": (build_classifier, lambda: (img(1, 3, 32, 32, s=300),)),
}

# Heavy tier: real torchvision models at 224x224 plus the small transformer nets.
REAL_MODELS = {
    "mobilenet_v2": (build_tv_mobilenet_v2, img224),
    "resnet18": (build_tv_resnet18, img224),
    "mobilenet_v3_small": (build_tv_mobilenet_v3_small, img224),
    "vit": (build_vit, img32),
    "gpt": (build_gpt, gpt_inputs),
    "conv1d_net": (build_conv1d_net, conv1d_inputs),
}
