//! `#[algorithm]`: the series' promise that an algorithm is just a function.
//!
//! ```ignore
//! #[algorithm]
//! fn language_detection(text: String) -> Result<Detection, AlgorithmError> { ... }
//! ```
//! keeps the function as written and adds, beside it:
//! - `LanguageDetectionPayload`, a struct of the parameters that derives its JSON schema and
//!   rejects unknown fields;
//! - `fn language_detection_algorithm() -> switchyard_runner::Algorithm`, registered under the
//!   function's name (or `#[algorithm(name = "...")]`): an `async fn` runs on the reactor, any
//!   other on the blocking pool.

use proc_macro::TokenStream;
use quote::{format_ident, quote};
use syn::{FnArg, ItemFn, LitStr, Pat, parse_macro_input, spanned::Spanned};

/// Turns a function into a runner algorithm: adds its payload struct and its
/// `<name>_algorithm()` constructor beside it (see the crate's documentation).
#[proc_macro_attribute]
pub fn algorithm(attr: TokenStream, item: TokenStream) -> TokenStream {
    let function = parse_macro_input!(item as ItemFn);
    let mut name: Option<LitStr> = None;
    let parser = syn::meta::parser(|meta| {
        if meta.path.is_ident("name") {
            name = Some(meta.value()?.parse()?);
            Ok(())
        } else {
            Err(meta.error("expected `name = \"...\"`"))
        }
    });
    parse_macro_input!(attr with parser);
    match expand(function, name) {
        Ok(tokens) => tokens.into(),
        Err(error) => error.to_compile_error().into(),
    }
}

fn expand(mut function: ItemFn, name: Option<LitStr>) -> syn::Result<proc_macro2::TokenStream> {
    let fn_ident = function.sig.ident.clone();
    let vis = function.vis.clone();
    let name = name.map_or_else(|| fn_ident.to_string(), |lit| lit.value());
    let payload = format_ident!("{}Payload", pascal_case(&fn_ident.to_string()));
    let constructor = format_ident!("{}_algorithm", fn_ident);

    let mut fields = Vec::new();
    let mut args = Vec::new();
    for input in &function.sig.inputs {
        let FnArg::Typed(typed) = input else {
            return Err(syn::Error::new(
                input.span(),
                "an algorithm is a free function: no `self`",
            ));
        };
        let Pat::Ident(pat) = typed.pat.as_ref() else {
            return Err(syn::Error::new(
                typed.pat.span(),
                "parameters must be plain names: they become payload fields",
            ));
        };
        let ident = &pat.ident;
        let ty = &typed.ty;
        let attrs = &typed.attrs;
        // A parameter's doc comment documents its field; an undocumented one still says where
        // it goes, so the payload is documented either way.
        let fallback_doc = (!attrs.iter().any(|attr| attr.path().is_ident("doc")))
            .then(|| format!("The `{ident}` argument of `{fn_ident}`."))
            .map(|doc| quote! { #[doc = #doc] });
        fields.push(quote! { #fallback_doc #(#attrs)* pub #ident: #ty });
        args.push(quote! { payload.#ident });
    }

    let doc = format!("The payload of the `{name}` algorithm: the parameters of `{fn_ident}`.");
    let register = if function.sig.asyncness.is_some() {
        quote! { ::switchyard_runner::Algorithm::from_async(#name, |payload: #payload| #fn_ident(#(#args),*)) }
    } else {
        quote! { ::switchyard_runner::Algorithm::blocking(#name, |payload: #payload| #fn_ident(#(#args),*)) }
    };
    for input in function.sig.inputs.iter_mut() {
        if let FnArg::Typed(typed) = input {
            typed.attrs.clear();
        }
    }

    Ok(quote! {
        #function

        #[doc = #doc]
        #[derive(::switchyard_runner::__private::serde::Deserialize, ::switchyard_runner::__private::schemars::JsonSchema)]
        #[serde(crate = "::switchyard_runner::__private::serde", deny_unknown_fields)]
        #[schemars(crate = "::switchyard_runner::__private::schemars")]
        #vis struct #payload {
            #(#fields),*
        }

        #[doc = concat!("Registers `", stringify!(#fn_ident), "` as the `", #name, "` algorithm.")]
        #vis fn #constructor() -> ::switchyard_runner::Algorithm {
            #register
        }
    })
}

fn pascal_case(snake: &str) -> String {
    snake
        .split('_')
        .filter(|part| !part.is_empty())
        .map(|part| {
            let mut chars = part.chars();
            chars.next().map_or_else(String::new, |first| {
                first.to_uppercase().chain(chars).collect()
            })
        })
        .collect()
}
