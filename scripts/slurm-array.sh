#!/bin/bash
# Slurm job array: 16 tasks, each screens 1/16 of the catalog on one GPU.
#SBATCH --array=0-15 --gres=gpu:1 --cpus-per-task=16 --time=02:00:00
# SLURM_ARRAY_TASK_ID / SLURM_ARRAY_TASK_COUNT select the shard (no --shard needed);
# --resume makes a requeued task continue where it stopped. `exec`: Slurm's SIGTERM (time
# limit, preemption, scancel) reaches deepscreen itself, which finishes the files in flight
# and exits 143; the task ends only once its rows are written.
exec deepscreen screen --files-from catalog.txt --model music \
    --resume -o "results/shard-${SLURM_ARRAY_TASK_ID}.jsonl"
