"""An example command plugin for segcore (docs/plugins.md, part 4): ``segcore count-params``.

Example::

    segcore count-params unet --encoder resnet18 --classes 3
    # unet-resnet18: 14,328,371 parameters (11,176,512 in the encoder)
"""
