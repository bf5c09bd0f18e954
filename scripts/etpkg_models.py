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
    seed(3)
    return finish(torchvision.models.mobilenet_v2(weights=None, width_mult=0.25, num_classes=10))


def build_mobilenet_v3_small_small():
    seed(4)
    return finish(torchvision.models.mobilenet_v3_small(weights=None, width_mult=0.25, num_classes=10))


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


FIXTURES = {
    "mobilenet_v2": (build_mobilenet_v2_small, img32),
    "resnet": (build_resnet_small, img32),
    "mobilenet_v3": (build_mobilenet_v3_small_small, img32),
    "vit": (build_vit, img32),
    "gpt": (build_gpt, gpt_inputs),
    "conv1d_net": (build_conv1d_net, conv1d_inputs),
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
