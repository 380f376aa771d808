"""Serial workflow (paper Fig. 1): simulate, then train, then choose — one after the other."""

from __future__ import annotations

from streamal.workflows.active import ActiveLearningWorkflow


class SerialWorkflow(ActiveLearningWorkflow):
    """Phase 0 simulates train/val/test/study (S0) then trains (T0); each later phase k runs
    AL_k → S_k → T_k on the union of all training data, warm-started from T_{k−1}."""

    name = "serial"

    async def run(self) -> None:
        await self.gather(self.phase0_jobs(study=True))
        result = await self.trainer.train("T0", epochs=self.phases[0].epochs, max_phase=0)
        for k in range(1, len(self.phases)):
            batch = await self.al_batch(k, self.phases[k].samples, result["best_checkpoint"])
            await self.simulate_al(f"p{k}/train", batch, slice(None), phase=k, stage=f"S{k}")
            result = await self.trainer.train(
                f"T{k}",
                epochs=self.phases[k].epochs,
                max_phase=k,
                warm_start=result["best_checkpoint"],
            )
