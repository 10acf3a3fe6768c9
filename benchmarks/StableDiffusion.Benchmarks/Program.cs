using BenchmarkDotNet.Running;

// Runs the benchmarks chosen on the command line, e.g. --filter '*SchedulerStep*'; see docs/performance.md.
BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
