namespace StableDiffusion.Models.Cuda;

/// <summary>
/// One long-lived thread that makes every call of a CUDA-graph UNet. ONNX Runtime's CUDA provider keeps its captured graphs
/// per calling thread, so calls from each generation's own thread would capture anew every time instead of replaying.
/// </summary>
internal sealed class GraphThread : IDisposable
{
    private readonly Thread _thread;
    private readonly SemaphoreSlim _work = new(0, 1);
    private readonly SemaphoreSlim _done = new(0, 1);
    private Action? _action;
    private Exception? _error;
    private volatile bool _stopping;

    public GraphThread()
    {
        _thread = new Thread(Loop) { IsBackground = true, Name = "StableDiffusion UNet (CUDA graph)" };
        _thread.Start();
    }

    /// <summary>Runs <paramref name="action"/> on the graph thread and waits for it; callers take turns (the UNet lease serialises them).</summary>
    public void Invoke(Action action)
    {
        _action = action;
        _work.Release();
        _done.Wait();
        if (_error is { } error)
        {
            _error = null;
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(error);
        }
    }

    public void Dispose()
    {
        _stopping = true;
        _work.Release();
        _thread.Join();
        _work.Dispose();
        _done.Dispose();
    }

    private void Loop()
    {
        while (true)
        {
            _work.Wait();
            if (_stopping)
            {
                return;
            }

            try
            {
                _action!();
            }
            catch (Exception ex)
            {
                _error = ex;
            }

            _action = null;
            _done.Release();
        }
    }
}
