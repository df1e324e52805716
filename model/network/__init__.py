"""The network: the EfficientNet-Lite0 encoder (:mod:`.encoder`), the coarse matting net with its uncertainty
head (:mod:`.matting_net`), the patch refiner and patch selection (:mod:`.refiner`), and named variants
with their checkpoints (:mod:`.registry`).
"""
