"""Latent class optimisation (Segal et al. 2021): steer an unconditional GAN's latent until a classifier
sees the wanted findings, and the rejection-sampling baseline it is compared with."""
