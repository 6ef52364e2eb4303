// The library the example's NuGet package ships; build.sh compiles it.
namespace Example.App
{
    /// <summary>The greeting the example app serves.</summary>
    public static class Greeting
    {
        public static string Hello(string name)
        {
            return "hello, " + name;
        }
    }
}
