"""What every trainer shares: the run folder, LoRA, the memory plan, torchrun, CIs over seeds."""
