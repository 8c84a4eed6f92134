"""For each reference document, the qbench commands that reproduce its setting (torch-free).

``DATA`` stands for the folder of a data set that is not downloaded by torchvision.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Recipe:
    reference: str
    setting: str
    commands: tuple[str, ...]


_004 = (
    "qbench baseline --train --dataset tinyimagenet --data-root DATA --image-size 64 --preset paper "
    "--lr 0.01 --momentum 0.9 --wd 0.0005 --epochs 30 --bs 64 --workers 2"
)
RECIPES = (
    Recipe(
        "000",
        "FP32 AlexNet report: torchvision AlexNet, 224x224, AdamW backbone/head LRs, label smoothing, "
        "plateau LR, early stopping; batch sweep 1/8/16/32/64, 10 warm-up + 100 timed runs",
        (
            "qbench run --model alexnet --dataset imagefolder --data-root DATA --image-size 224 "
            "--batch-sizes 1,8,16,32,64",
        ),
    ),
    Recipe(
        "001",
        "AlexNet (paper) on CIFAR-10, resize 256 / crop 224 / flips, SGD 0.9 wd 5e-4, LR /10 on plateau, "
        "TenCrop + flips at test, top-1/top-5 error; optional bias init; ResNet-18 comparison",
        (
            "qbench baseline --train --model alexnet-paper --dataset cifar10 --download --image-size 227 "
            "--preset paper --augment paper --eval-crops ten --exp cifar10-alexnet",
            "qbench baseline --train --model alexnet-paper --dataset cifar10 --download --image-size 227 "
            "--preset paper --augment paper --eval-crops ten --paper-init --exp cifar10-alexnet-init",
            "qbench baseline --train --model resnet18 --dataset cifar10 --download --image-size 224 "
            "--preset paper --augment paper --eval-crops ten --exp cifar10-resnet18",
        ),
    ),
    Recipe(
        "002",
        "AlexNet on ImageNet: RandomResizedCrop + flips, ImageNet normalization, SGD lr 1e-2, 90 epochs, "
        "batch 128 on 4 GPUs; torchvision's pretrained weights for comparison",
        (
            "torchrun --nproc-per-node 4 -m qbench baseline --train --model alexnet --dataset imagenet "
            "--data-root DATA --image-size 224 --preset paper --augment imagenet --lr 0.01 --epochs 90 "
            "--batch-size 32 --workers 8 --device cuda --exp imagenet-alexnet",
            "qbench baseline --import alexnet-owt-7be5be79.pth --model alexnet --dataset imagenet "
            "--data-root DATA --image-size 224 --exp imagenet-torchvision",
        ),
    ),
    Recipe(
        "003",
        "The paper's AlexNet (LRN, 96-256-384-384-256) on MNIST at 227x227, 5 epochs at lr 1e-4: layer "
        "summary and per-class P/R/F1 on train/val/test",
        (
            "qbench baseline --train --model alexnet-paper --dataset mnist --download --image-size 227 "
            "--lr 1e-4 --epochs 5 --exp mnist-alexnet",
            "qbench evaluate --exp mnist-alexnet",
        ),
    ),
    Recipe(
        "004",
        "AlexNet variants on TinyImageNet (64x64, 200 classes), SGD lr 0.01 momentum 0.9 wd 5e-4, "
        "30 epochs, batch 64: baseline, random crop, pixel, dropout, batch norm, combined large/small, GAP",
        (
            f"{_004} --model alexnet-plain --augment none --exp tin-baseline",
            f"{_004} --model alexnet-plain --augment random-crop --exp tin-crop",
            f"{_004} --model alexnet-plain --augment pixel --exp tin-pixel",
            f"{_004} --model alexnet-dropout --augment none --exp tin-dropout",
            f"{_004} --model alexnet-bn --augment none --exp tin-bn",
            f"{_004} --model alexnet-combined-large --exp tin-combined-large",
            f"{_004} --model alexnet-small --exp tin-combined-small",
            f"{_004} --model alexnet-gap --exp tin-gap",
            "qbench evaluate --exp tin-baseline",
        ),
    ),
)
