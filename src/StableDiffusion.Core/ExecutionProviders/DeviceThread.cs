namespace StableDiffusion.ExecutionProviders;

/// <summary>
/// One long-lived thread that makes every ONNX Runtime call of a session whose provider keeps state per calling thread
/// (<see cref="ExecutionProviderFamily.NeedsDeviceThread"/>: CUDA's captured graphs, cuDNN and cuBLAS handles, tuned plans).
/// </summary>
internal sealed class DeviceThread : IDisposable
{
    private readonly Thread _thread;
    private readonly Lock _callers = new();
    private readonly SemaphoreSlim _work = new(0, 1);
    private readonly SemaphoreSlim _done = new(0, 1);
    private Action? _action;
    private Exception? _error;
    private volatile bool _stopping;

    public DeviceThread(string name)
    {
        _thread = new Thread(Loop) { IsBackground = true, Name = name };
        _thread.Start();
    }

    /// <summary>The thread for a component's session when its provider needs one; null when calls may come from any thread.</summary>
    public static DeviceThread? For(ExecutionProvider provider, string component)
    {
        ExecutionProviderFamily family = ExecutionProviderFamily.Of(provider);
        return family.NeedsDeviceThread ? new DeviceThread($"StableDiffusion {component} ({family.Names[0]})") : null;
    }

    /// <summary>Runs <paramref name="action"/> on the device thread and waits for it; concurrent callers take turns.</summary>
    public void Invoke(Action action)
    {
        if (Thread.CurrentThread == _thread)
        {
            action();
            return;
        }

        lock (_callers)
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
    }

    /// <summary>Runs <paramref name="function"/> on the device thread and returns its result.</summary>
    public T Invoke<T>(Func<T> function)
    {
        T result = default!;
        Invoke(() => { result = function(); });
        return result;
    }

    public void Dispose()
    {
        lock (_callers)
        {
            _stopping = true;
            _work.Release();
        }

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
